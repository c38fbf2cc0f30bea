"""Build the Application and the bot around it; start in webhook or polling mode, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from pydantic import SecretStr
from telegram.error import InvalidToken, NetworkError

from bot import audio, registration, workdirs
from bot.acceptance import Acceptor
from bot.alerts import AdminAlerts
from bot.application import ALLOWED_UPDATES, build_application
from bot.backup import BackupError, running_on
from bot.capacity import default_jobs_in_flight
from bot.config import RedisLocation, Settings, SqliteLocation, database_location
from bot.jobs import Dispatcher
from bot.link_download import LinkDownloader
from bot.metrics import Metrics
from bot.pipeline import JobRunner
from bot.polling import Poller, PollingStopped
from bot.services import Services, attach
from bot.store import Store, StoreUnavailable, open_store
from bot.summarizer import Summarizer
from bot.telegram_http import new_session
from bot.transcriber import Transcriber
from bot.upstream_gate import UpstreamGate, build_gate
from bot.web import WebServer

log = logging.getLogger(__name__)


class Fatal(Exception):
    """The bot cannot go on; the message says why, for one line on stderr."""


class StartupError(Fatal):
    """The bot cannot start; the message says why, for one line on stderr."""


class BotService:
    """The whole bot: store, clients, Application, job workers, the web server, the poller."""

    def __init__(
        self, settings: Settings, *, link_resolver: AbstractResolver | None = None
    ) -> None:
        """`link_resolver`: how link hosts are looked up (the system's resolver by default)."""
        self.settings = settings
        self.links = LinkDownloader(settings, link_resolver)
        self.metrics = Metrics(settings.models)
        self.application = build_application(settings, self.metrics)
        self.store = open_store(settings.database_url)
        # One key, one gate: transcriptions, summaries and translations share its limits.
        self.upstream_gate = build_gate(settings, self.metrics)
        self.alerts = AdminAlerts(settings, self.store)
        self.metrics.on_telegram_error(self.alerts.telegram_error)
        self.transcriber, self.summarizer = _api_clients(settings, self.upstream_gate)
        self.downloads: aiohttp.ClientSession | None = None  # made in the event loop, at start
        self.dispatcher = _dispatcher(settings, self.store)
        self.metrics.watch_jobs(self.store, lambda: self.dispatcher.running)
        self.services = Services(
            settings,
            self.store,
            self.transcriber,
            self.summarizer,
            self.dispatcher,
            self.metrics,
            self.alerts,
        )
        attach(self.application.bot_data, self.services)
        self.acceptor = Acceptor(self.application, self.store)
        self.web = self._web_server()
        self._poller: Poller | None = None
        self._polling: asyncio.Task[None] | None = None

    def _web_server(self) -> WebServer:
        settings = self.settings
        webhook = settings.webhook_url is not None
        return WebServer(
            settings.listen_host,
            settings.listen_port,
            webhook_path=settings.webhook_path if webhook else None,
            secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
            accept=self.acceptor.accept_json,
            metrics=self.metrics,
            problem=self._problem,
            metrics_address=(settings.metrics_host, settings.metrics_port),
            metrics_token=_secret(settings.metrics_token),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Start everything, serve until `stop` is set (or polling cannot go on), shut down."""
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            raise StartupError(f"DATABASE_URL: {exc}") from exc
        except Exception as exc:
            raise StartupError(f"DATABASE_URL: cannot open the database: {exc}") from exc
        running = contextlib.ExitStack()
        try:
            self._refuse_restores(running)
            await self._start()
            await self._serve(stop)
        finally:
            await self._shutdown()
            running.close()

    def _refuse_restores(self, running: contextlib.ExitStack) -> None:
        """Until this bot has stopped, `python -m bot restore` refuses to replace its SQLite
        file (it would take away the jobs under way)."""
        location = database_location(self.settings.database_url)
        if isinstance(location, SqliteLocation):
            try:
                running.enter_context(running_on(location.path))
            except BackupError as exc:
                raise StartupError(f"DATABASE_URL: {exc}") from None

    async def _start(self) -> None:
        app = self.application
        try:
            await app.initialize()  # getMe
        except InvalidToken as exc:
            raise StartupError("TELEGRAM_BOT_TOKEN: Telegram does not accept this token") from exc
        except NetworkError as exc:
            raise StartupError(f"TELEGRAM_API_URL: cannot reach the Bot API: {exc}") from exc
        self._warn_about_the_setup()
        workdirs.remove_leftovers()  # of runs killed before they could
        await app.start()
        self.alerts.start(app.bot)
        self.downloads = new_session(aiohttp.ClientTimeout(sock_connect=10.0, sock_read=60.0))
        runner = JobRunner(
            app.bot,
            self.store,
            self.transcriber,
            self.settings,
            self.downloads,
            self.metrics,
            self.links,
            alerts=self.alerts,
        )
        await self.dispatcher.start(runner)
        await self.web.start()
        if self.settings.webhook_url is not None:
            await registration.register_webhook(app.bot, self.store, self.settings, ALLOWED_UPDATES)
        else:
            await self._start_polling()
        self.web.ready = True

    def _warn_about_the_setup(self) -> None:
        me = self.application.bot.bot
        log.info("running as @%s (id %d)", me.username, me.id)
        if not audio.ffmpeg_available():
            log.warning(
                "ffmpeg/ffprobe not found: voice notes (and WAV, mp3 with a duration) still "
                "work; other formats, videos and long recordings are refused until it is installed"
            )
        if not me.can_read_all_group_messages:
            log.warning(
                "privacy mode is on: in groups the bot sees only commands and replies to it, not "
                "voice notes. Turn it off in @BotFather (/setprivacy, Disable, then re-add the "
                "bot to each group) or make the bot a group admin."
            )

    async def _start_polling(self) -> None:
        bot = self.application.bot
        await registration.set_commands(bot)
        await bot.delete_webhook()
        if isinstance(database_location(self.settings.database_url), RedisLocation):
            log.warning(
                "polling with a shared Redis store: run one instance only; several "
                "replicas need webhook mode (WEBHOOK_URL, the same WEBHOOK_SECRET on each)"
            )
        self._poller = Poller(bot, self.acceptor.accept, ALLOWED_UPDATES)
        self._polling = asyncio.create_task(self._poller.run(), name="polling")
        log.info("polling mode (no WEBHOOK_URL)")

    async def _serve(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; Fatal when polling ends on its own (it cannot go on)."""
        stopping = asyncio.ensure_future(stop.wait())
        watched: set[asyncio.Future[Any]] = {stopping}
        if self._polling is not None:
            watched.add(self._polling)
        try:
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if self._polling is not None and self._polling.done():
            error = self._polling.exception()
            if isinstance(error, PollingStopped):
                raise Fatal(str(error)) from error
            raise Fatal(f"polling stopped: {type(error).__name__}: {error}") from error

    def _problem(self) -> str | None:
        """Why /healthz should say 503 now, if it should."""
        if self._polling is not None and self._polling.done():
            return "polling stopped"
        if self._poller is not None and self._poller.failing:
            return "getUpdates is failing"
        if self.web.ready and not self.dispatcher.alive:
            return "the job dispatcher stopped"
        return None

    async def _shutdown(self) -> None:
        """Stop in order; a step that fails is logged and the next ones still run."""
        self.web.accepting = False
        if self._polling is not None:
            self._polling.cancel()
            await asyncio.gather(self._polling, return_exceptions=True)
        grace = self.settings.shutdown_grace_seconds
        await _step("stop the job dispatcher", self.dispatcher.stop(grace))
        await _step("send the last admin alerts", self.alerts.stop())
        if self.application.running:
            await _step("stop the Application", self.application.stop())
        await _step("shut the Application down", self.application.shutdown())
        await _step("stop the web server", self.web.stop())
        await _step("close the transcription client", self.transcriber.aclose())
        await _step("close the summary client", self.summarizer.aclose())
        await _step("close the API key's gate", self.upstream_gate.close())
        if self.downloads is not None:
            await _step("close the download session", self.downloads.close())
        await _step("close the store", self.store.close())
        log.info("stopped")


async def _step(what: str, action: Awaitable[object]) -> None:
    try:
        await action
    except Exception:
        log.exception("shutdown: could not %s", what)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _api_clients(settings: Settings, gate: UpstreamGate) -> tuple[Transcriber, Summarizer]:
    """The transcription and chat clients: one key, its retry policy and its gate."""
    transcriber = Transcriber(
        settings.openai_root,
        settings.openai_api_key,
        max_attempts=settings.upstream_max_attempts,
        retry_seconds=settings.upstream_retry_seconds,
        streaming=settings.streaming,
        gate=gate,
    )
    summarizer = Summarizer(
        settings.openai_root,
        settings.openai_api_key,
        max_attempts=settings.upstream_max_attempts,
        retry_seconds=settings.upstream_retry_seconds,
        gate=gate,
    )
    return transcriber, summarizer


def _dispatcher(settings: Settings, store: Store) -> Dispatcher:
    return Dispatcher(
        store,
        max_concurrent=settings.max_concurrent_jobs or default_jobs_in_flight(),
        lease_seconds=settings.job_lease_seconds,
        retention_seconds=settings.job_retention_days * 86400,
        max_attempts=settings.job_max_attempts,
    )
