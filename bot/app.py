"""Build the Application, wire handlers, run in webhook or polling mode, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from typing import Any

import aiohttp
from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    ContextTypes,
    Defaults,
    TypeHandler,
)

from bot import audio, i18n
from bot.config import RedisLocation, Settings, database_location
from bot.flood import build_limiter
from bot.handlers import access, buttons, commands, media, preferences, usage
from bot.jobs import Dispatcher
from bot.logs import request_context
from bot.metrics import Metrics
from bot.pipeline import JobRunner
from bot.services import Services, attach, services_of
from bot.store import TRANSIENT_STORE_ERRORS, StoreUnavailable, UpdateBeingHandled, open_store
from bot.summarizer import Summarizer
from bot.telegram_http import AiohttpRequest, new_session
from bot.transcriber import Transcriber
from bot.web import BadUpdate, WebServer

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
POLL_TIMEOUT = 25
# Replicas starting together: one of them registers the webhook and the command menu.
_REGISTER_ONCE_SECONDS = 60.0


class StartupError(Exception):
    """The bot cannot start; the message says why, for one line on stderr."""


def build_application(
    settings: Settings, metrics: Metrics
) -> Application[Any, Any, Any, Any, Any, Any]:
    root = settings.api_root
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .local_mode(settings.telegram_local_mode)
        .updater(None)
        .request(
            AiohttpRequest(
                metrics,
                connection_pool_size=256,
                pool_timeout=30.0,
                connect_timeout=10.0,
                read_timeout=30.0,
                write_timeout=30.0,
                media_write_timeout=120.0,
            )
        )
        .get_updates_request(AiohttpRequest(metrics, connection_pool_size=2, read_timeout=10.0))
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .concurrent_updates(True)
    )
    builder = builder.rate_limiter(build_limiter(settings))  # type: ignore[arg-type]
    application = builder.build()
    application.add_handler(TypeHandler(Update, _use_senders_language), group=-3)
    application.add_handler(TypeHandler(Update, _drop_duplicates), group=-2)
    application.add_handler(access.handler(), group=-1)
    application.add_handler(media.handler())
    for handler in [
        *commands.handlers(),
        *preferences.handlers(),
        *usage.handlers(),
        *buttons.handlers(),
    ]:
        application.add_handler(handler)
    application.add_error_handler(_on_error)
    return application


async def _use_senders_language(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer in the sender's language: later handlers, and tasks they start, copy this context."""
    user = update.effective_user
    i18n.set_language(user.language_code if user else None)


async def _drop_duplicates(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Telegram redelivers an update after a slow or failed answer: do it once."""
    if not await services_of(context).store.claim_update(update.update_id):
        log.info("update %d seen before: ignored", update.update_id)
        raise ApplicationHandlerStop


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    error = context.error
    svc = services_of(context)
    if (
        isinstance(update, Update)
        and isinstance(error, TRANSIENT_STORE_ERRORS)
        and update.update_id in svc.accepting  # else answered already (a non-blocking handler)
    ):
        # Not accepted: the web route answers 503 (polling does not move on) and Telegram
        # delivers it again. The other handlers need not try: the store is down.
        svc.failed_updates.add(update.update_id)
        if isinstance(error, UpdateBeingHandled):
            log.info("update %d is being handled by another replica: 503", update.update_id)
        else:
            log.error("update %d not accepted: the store failed: %s", update.update_id, error)
        raise ApplicationHandlerStop
    log.error("error while handling an update", exc_info=error)


class BotService:
    """The whole bot: store, clients, Application, job workers and the web server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.models)
        self.application = build_application(settings, self.metrics)
        self.store = open_store(settings.database_url)
        self.transcriber = Transcriber(
            settings.openai_root,
            settings.openai_api_key,
            max_attempts=settings.upstream_max_attempts,
            retry_seconds=settings.upstream_retry_seconds,
            streaming=settings.streaming,
        )
        self.summarizer = Summarizer(
            settings.openai_root,
            settings.openai_api_key,
            max_attempts=settings.upstream_max_attempts,
            retry_seconds=settings.upstream_retry_seconds,
        )
        self.downloads: aiohttp.ClientSession | None = None  # made in the event loop, at start
        self.dispatcher = Dispatcher(
            self.store,
            max_concurrent=settings.max_concurrent_jobs,
            lease_seconds=settings.job_lease_seconds,
            retention_seconds=settings.job_retention_days * 86400,
        )
        self.metrics.watch_jobs(self.store, lambda: self.dispatcher.running)
        self.services = Services(
            settings, self.store, self.transcriber, self.summarizer, self.dispatcher, self.metrics
        )
        attach(self.application.bot_data, self.services)
        webhook = settings.webhook_url is not None
        self.web = WebServer(
            settings.listen_host,
            settings.listen_port,
            webhook_path=settings.webhook_path if webhook else None,
            secret=settings.webhook_secret.get_secret_value() if settings.webhook_secret else None,
            accept=self._accept_json,
            metrics=self.metrics,
        )
        self._poller: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Start everything, serve until `stop` is set, then shut down in order."""
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            raise StartupError(f"DATABASE_URL: {exc}") from exc
        except Exception as exc:
            raise StartupError(f"DATABASE_URL: cannot open the database: {exc}") from exc
        try:
            await self._start()
            await stop.wait()
        finally:
            await self._shutdown()

    async def _start(self) -> None:
        app = self.application
        try:
            await app.initialize()  # getMe
        except InvalidToken as exc:
            raise StartupError("TELEGRAM_BOT_TOKEN: Telegram does not accept this token") from exc
        except NetworkError as exc:
            raise StartupError(f"TELEGRAM_API_URL: cannot reach the Bot API: {exc}") from exc
        me = app.bot.bot
        log.info("running as @%s (id %d)", me.username, me.id)
        if not audio.ffmpeg_available():
            log.warning(
                "ffmpeg/ffprobe not found: voice notes (and WAV, FLAC, mp3 with a duration) still "
                "work; other formats, videos and long recordings are refused until it is installed"
            )
        if not me.can_read_all_group_messages:
            log.warning(
                "privacy mode is on: in groups the bot sees only commands and replies to it, not "
                "voice notes. Turn it off in @BotFather (/setprivacy, Disable, then re-add the "
                "bot to each group) or make the bot a group admin."
            )
        await app.start()
        self.downloads = new_session(aiohttp.ClientTimeout(sock_connect=10.0, sock_read=60.0))
        runner = JobRunner(
            app.bot, self.store, self.transcriber, self.settings, self.downloads, self.metrics
        )
        await self.dispatcher.start(runner)
        await self.web.start()
        if self.settings.webhook_url is not None:
            await self._register_webhook()
        else:
            await self._set_commands()
            await app.bot.delete_webhook()
            if isinstance(database_location(self.settings.database_url), RedisLocation):
                log.warning(
                    "polling with a shared Redis store: run one instance only; several "
                    "replicas need webhook mode (WEBHOOK_URL, the same WEBHOOK_SECRET on each)"
                )
            self._poller = asyncio.create_task(self._poll(), name="polling")
            log.info("polling mode (no WEBHOOK_URL)")
        self.web.ready = True

    async def _set_commands(self) -> bool:
        """The English menu for everyone, and one for the users of each other language."""
        registered = True
        for language in i18n.LANGUAGES:
            with i18n.use_language(language):
                menu = commands.command_menu()
            code = None if language == i18n.SOURCE_LANGUAGE else language
            try:
                await self.application.bot.set_my_commands(menu, language_code=code)
            except TelegramError as exc:  # a menu is a nicety: never a reason not to start
                log.warning("could not register the command menu (%s): %s", language, exc)
                registered = False
        return registered

    async def _register_webhook(self) -> None:
        """setMyCommands and setWebhook, by one replica when several start together.

        Both calls are idempotent, but a whole fleet making them at once earns 429s: the
        first replica to claim these settings (for a minute) makes them; a failure gives the
        claim back, so the next replica or restart tries again.
        """
        url = str(self.settings.webhook_url)
        assert self.settings.webhook_secret is not None
        secret = self.settings.webhook_secret.get_secret_value()
        key = "telegram-registration:" + _digest(url, secret, ALLOWED_UPDATES, _english_menu())
        if not await self.store.claim_once(key, _REGISTER_ONCE_SECONDS):
            log.info(
                "webhook mode: another replica registered the webhook just now; serving %s",
                self.settings.webhook_path,
            )
            return
        registered = await self._set_commands()
        try:
            await self.application.bot.set_webhook(
                url=url,
                secret_token=secret,
                allowed_updates=ALLOWED_UPDATES,
                max_connections=100,
            )
        except TelegramError as exc:
            registered = False
            # Serve anyway: the webhook may already be set (e.g. by another replica), and a
            # bot that exits here would be restarted into the same error.
            log.error(
                "setWebhook failed (%s): check WEBHOOK_URL (https, port 443/80/88/8443). "
                "Serving %s anyway; Telegram delivers only once the webhook is set.",
                exc,
                self.settings.webhook_path,
            )
        else:
            log.info("webhook mode: Telegram delivers to %s", self.settings.webhook_path)
        if not registered:
            await self.store.release_claim(key)

    async def _shutdown(self) -> None:
        self.web.accepting = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        with contextlib.suppress(Exception):
            await self.dispatcher.stop(self.settings.shutdown_grace_seconds)
        if self.application.running:
            await self.application.stop()
        with contextlib.suppress(Exception):
            await self.application.shutdown()
        await self.web.stop()
        await self.transcriber.aclose()
        await self.summarizer.aclose()
        if self.downloads is not None:
            await self.downloads.close()
        await self.store.close()
        log.info("stopped")

    async def _accept_json(self, data: dict[str, object]) -> bool:
        try:
            update = Update.de_json(data, self.application.bot)
        except Exception as exc:
            raise BadUpdate(f"{type(exc).__name__}: {exc}") from exc
        return await self.accept(update)

    async def accept(self, update: Update) -> bool:
        """Handle the update's blocking part (queue a job); True once it is durably accepted."""
        with request_context(f"upd-{update.update_id}"):
            return await self._accept(update)

    async def _accept(self, update: Update) -> bool:
        self.services.accepting.add(update.update_id)
        try:
            await self.application.process_update(update)
        finally:
            self.services.accepting.discard(update.update_id)
        if update.update_id in self.services.failed_updates:
            self.services.failed_updates.discard(update.update_id)
            with contextlib.suppress(*TRANSIENT_STORE_ERRORS):
                await self.store.forget_update(update.update_id)
            return False
        try:
            await self.store.commit()
            await self.store.confirm_update(update.update_id)
        except TRANSIENT_STORE_ERRORS:
            log.exception("update %d not accepted: commit failed", update.update_id)
            return False
        return True

    async def _poll(self) -> None:
        """getUpdates; the offset moves on only after an update is durably accepted."""
        bot = self.application.bot
        offset: int | None = None
        delay = 1.0
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES
                )
            except Conflict as exc:
                log.error(
                    "Telegram says 409 Conflict (%s): %s. Only one instance may poll; several "
                    "replicas need webhook mode (WEBHOOK_URL, the same WEBHOOK_SECRET on each).",
                    exc,
                    "a webhook is set for this bot (an instance in webhook mode set it)"
                    if "webhook" in str(exc).lower()
                    else "another process is polling with this token",
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
                continue
            except NetworkError as exc:
                log.warning("getUpdates failed: %s; retrying in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            for update in updates:
                if not await self.accept(update):
                    await asyncio.sleep(1.0)
                    break  # the same update comes again with the next getUpdates
                offset = update.update_id + 1


def _english_menu() -> list[tuple[str, str]]:
    with i18n.use_language(i18n.SOURCE_LANGUAGE):
        return [(c.command, c.description) for c in commands.command_menu()]


def _digest(*values: object) -> str:
    """A short fingerprint of settings (the secret in it cannot be read back)."""
    text = json.dumps(values, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _seconds(value: object) -> float:
    """RetryAfter.retry_after is an int or a timedelta, depending on PTB's settings."""
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]
