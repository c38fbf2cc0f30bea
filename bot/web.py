"""The aiohttp server: Telegram's webhook deliveries, /healthz and /metrics."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.logs import Throttle
from bot.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

# Updates are small (a message with a caption is a few KB); anything near this is not Telegram.
MAX_BODY_BYTES = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
# Anyone can post to a public webhook: refusals are logged once a minute, with their count.
_REFUSALS_LOGGED_EVERY = 60.0

# Takes a decoded JSON object; returns False when the update could not be accepted now.
Accept = Callable[[dict[str, object]], Awaitable[bool]]


class BadUpdate(ValueError):
    """The body is JSON but not a Telegram Update."""


class WebServer:
    """The public listener: the webhook (when a path is given) and /healthz; /metrics too when
    a token guards it. /metrics always on a listener of its own (127.0.0.1 by default)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        webhook_path: str | None,
        secret: str | None,
        accept: Accept,
        metrics: Metrics,
        problem: Callable[[], str | None] = lambda: None,
        metrics_address: tuple[str, int] = ("127.0.0.1", 0),
        metrics_token: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._secret = secret.encode() if secret else None
        self._accept = accept
        self._metrics = metrics
        self._problem = problem  # why /healthz answers 503 (nothing wrong: None)
        self._metrics_address = metrics_address
        self._metrics_token = metrics_token.encode() if metrics_token else None
        self.ready = False
        self.accepting = True
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.router.add_get("/healthz", self._healthz)
        if self._metrics_token is not None:
            self.app.router.add_get("/metrics", self._metrics_page)
        if webhook_path is not None:
            self.app.router.add_post(webhook_path, self._webhook)
        self.metrics_app = web.Application()
        self.metrics_app.router.add_get("/metrics", self._metrics_page)
        self._runners: list[web.AppRunner] = []
        self._refusals = Throttle(_REFUSALS_LOGGED_EVERY)
        self.port: int | None = None
        self.metrics_port: int | None = None

    async def start(self) -> None:
        self.port = await self._serve(self.app, self._host, self._port)
        log.info("listening on %s:%s", self._host, self.port)
        host, port = self._metrics_address
        try:
            self.metrics_port = await self._serve(self.metrics_app, host, port)
        except OSError as exc:  # monitoring is no reason not to transcribe
            log.error("metrics: cannot listen on %s:%s (%s); set METRICS_PORT", host, port, exc)
        else:
            log.info("metrics on http://%s:%s/metrics", host, self.metrics_port)

    async def _serve(self, app: web.Application, host: str, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, host, port, backlog=1024).start()
        addresses = runner.addresses
        return int(addresses[0][1]) if addresses else port

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        if not self.ready:
            return web.json_response({"status": "starting"}, status=503)
        if not self.accepting:
            # Stopping: a load balancer takes this replica out while its jobs drain.
            return web.json_response({"status": "stopping"}, status=503)
        problem = self._problem()
        if problem is not None:
            # Not receiving updates (polling) or not running jobs: restart or take it out.
            return web.json_response({"status": problem}, status=503)
        return web.json_response({"status": "ok"})

    async def _metrics_page(self, request: web.Request) -> web.Response:
        if self._metrics_token is not None and not _bearer_is(request, self._metrics_token):
            return web.json_response(
                {"error": "bearer token missing or wrong"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = await self._metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _webhook(self, request: web.Request) -> web.Response:
        refused = self._check_secret(request)
        if refused is not None:
            return refused
        if not self.accepting or not self.ready:
            # Shutting down (or not started): Telegram will deliver it again later.
            return web.json_response({"error": "not accepting updates now"}, status=503)
        try:
            body = await request.read()
            data = json.loads(body)
        except web.HTTPRequestEntityTooLarge:
            log.warning("webhook body over %d bytes refused", MAX_BODY_BYTES)
            return web.json_response({"error": "body too large"}, status=413)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            log.warning("webhook body refused: not JSON (%s)", type(exc).__name__)
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(data, dict) or not _is_update_id(data.get("update_id")):
            log.warning("webhook body refused: JSON but no update_id")
            return web.json_response({"error": "body is not an Update"}, status=400)
        try:
            accepted = await self._accept(data)
        except BadUpdate as exc:
            log.warning("webhook body is not a valid Update: %s", exc)
            return web.json_response({"error": "body is not an Update"}, status=400)
        if not accepted:
            # The store is unavailable: any non-2xx makes Telegram deliver it again later; 503
            # also tells a load balancer in front that this is temporary.
            return web.json_response({"error": "try again later"}, status=503)
        return web.json_response({"ok": True})

    def _check_secret(self, request: web.Request) -> web.Response | None:
        """None for Telegram's secret; else the answer (401 missing, 403 wrong), logged rarely."""
        given = request.headers.get(SECRET_HEADER)
        # aiohttp decodes header bytes leniently (surrogates for non-UTF-8): only ASCII compares.
        if (
            given is not None
            and given.isascii()
            and self._secret is not None
            and hmac.compare_digest(given.encode(), self._secret)
        ):
            return None
        count = self._refusals.hit()
        if count is not None:
            log.warning(
                "webhook deliveries refused for a missing or wrong secret token: %d since the "
                "last such line (at most one a minute), the latest from %s",
                count,
                request.remote,
            )
        if given is None:
            return web.json_response({"error": "secret token missing"}, status=401)
        return web.json_response({"error": "secret token wrong"}, status=403)


def _bearer_is(request: web.Request, token: bytes) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given = given.strip()
    return (
        scheme.lower() == "bearer"
        and given.isascii()
        and hmac.compare_digest(given.encode(), token)
    )


def _is_update_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
