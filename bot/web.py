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
    """Serves the webhook (when a path is given), /healthz and /metrics on one aiohttp app."""

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
    ) -> None:
        self._host = host
        self._port = port
        self._secret = secret.encode() if secret else None
        self._accept = accept
        self._metrics = metrics
        self._problem = problem  # why /healthz answers 503 (nothing wrong: None)
        self.ready = False
        self.accepting = True
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics_page)
        if webhook_path is not None:
            self.app.router.add_post(webhook_path, self._webhook)
        self._runner: web.AppRunner | None = None
        self._refusals = Throttle(_REFUSALS_LOGGED_EVERY)
        self.port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port
        log.info("listening on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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

    async def _metrics_page(self, _: web.Request) -> web.Response:
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


def _is_update_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
