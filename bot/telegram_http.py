"""HTTP to Telegram over aiohttp: python-telegram-bot's Bot API calls, and file downloads.

aiohttp rather than python-telegram-bot's HTTPXRequest: httpx/httpcore took about 60% of the
event loop in the throughput benchmark (five requests a note), much of it in httpcore's pool,
which looks at every pooled connection for each request (encode/httpcore#1035).
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

import aiohttp
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.metrics import Metrics

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_POOL_TIMEOUT_MESSAGE = (
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent "
    "to Telegram. Consider adjusting the connection pool size or the pool timeout."
)


def new_session(
    timeout: aiohttp.ClientTimeout, user_agent: str | None = None
) -> aiohttp.ClientSession:
    """A keep-alive session without cookies or a connection limit (AiohttpRequest has its own)."""
    headers = {"User-Agent": user_agent} if user_agent else None
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=timeout,
        headers=headers,
        cookie_jar=aiohttp.DummyCookieJar(),
        # httpx honoured HTTP(S)_PROXY/ALL_PROXY/NO_PROXY; aiohttp does too with trust_env, but
        # then reads the environment (and ~/.netrc) on every request: only when a proxy is set.
        trust_env=_proxy_in_environment(),
    )


def _proxy_in_environment() -> bool:
    return any(scheme in ("http", "https") for scheme in urllib.request.getproxies())


class AiohttpRequest(BaseRequest):
    """python-telegram-bot's BaseRequest over aiohttp, counting every failed call in `metrics`.

    Raises what HTTPXRequest raises: TimedOut when a timeout passes (the pool's included),
    NetworkError when no answer came; python-telegram-bot's BaseRequest turns an answer outside
    2xx into BadRequest, Forbidden, RetryAfter... The timeouts (seconds, None for none) apply as
    HTTPXRequest's do: connect, read (between two reads of the answer), pool (waiting for one of
    `connection_pool_size` connections). aiohttp has no timeout on writing the request: the
    write timeout (media_write_timeout for uploads) bounds the whole call, together with the
    connect and read timeouts.
    """

    def __init__(
        self,
        metrics: Metrics | None = None,
        *,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._metrics = metrics
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._connections = asyncio.Semaphore(connection_pool_size)
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = new_session(aiohttp.ClientTimeout(), self.USER_AGENT)

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        # POST {base}/bot{token}/{method}; a GET is a file download whose URL names the file.
        api_method = url.rsplit("/", 1)[-1] if method == "POST" else "file"
        if self._metrics is not None:
            self._metrics.telegram_call(api_method)
        try:
            code, payload = await self._exchange(
                url,
                method,
                request_data,
                read_timeout,
                write_timeout,
                connect_timeout,
                pool_timeout,
            )
        except TelegramError as exc:
            self._count(api_method, type(exc).__name__)
            raise
        if method == "POST" and not payload.lstrip().startswith(b"{"):
            code, payload = _not_the_bot_api(code, payload)
        if not 200 <= code <= 299:
            self._count(api_method, str(code), _description(payload))
        return code, payload

    def _count(self, api_method: str, error: str, description: str = "") -> None:
        if self._metrics is not None:
            self._metrics.telegram_error(api_method, error, description)

    async def _exchange(
        self,
        url: str,
        method: str,
        request_data: RequestData | None,
        read_timeout: object,
        write_timeout: object,
        connect_timeout: object,
        pool_timeout: object,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        body, headers, uploads = _body(request_data)
        write_default = self._media_write_timeout if uploads else self._write_timeout
        timeout = self._timeout(
            _seconds(read_timeout, self._read_timeout),
            _seconds(write_timeout, write_default),
            _seconds(connect_timeout, self._connect_timeout),
        )
        pool = _seconds(pool_timeout, self._pool_timeout)
        await self._take_connection(pool)
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc
        finally:
            self._connections.release()

    async def _take_connection(self, wait: float | None) -> None:
        """One of the pool's connections, waited for at most `wait` seconds."""
        if not self._connections.locked():
            await self._connections.acquire()
            return
        try:
            async with asyncio.timeout(wait):
                await self._connections.acquire()
        except TimeoutError:
            raise TimedOut(_POOL_TIMEOUT_MESSAGE) from None

    def _timeout(
        self, read: float | None, write: float | None, connect: float | None
    ) -> aiohttp.ClientTimeout:
        key = (read, write, connect)
        found = self._timeouts.get(key)
        if found is None:
            total = None if None in key else sum(t for t in key if t is not None)
            found = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)
            self._timeouts[key] = found
        return found


def _seconds(given: object, default: float | None) -> float | None:
    """A timeout as PTB passes it: seconds, None for none, BaseRequest.DEFAULT_NONE if not given."""
    if given is None or (isinstance(given, int | float) and not isinstance(given, bool)):
        return given
    return default


def _not_the_bot_api(code: int, payload: bytes) -> tuple[int, bytes]:
    """A proxy's or captive portal's page (HTML, say) where the Bot API's JSON should be.

    Answered as a Bot API error of its own, short: PTB would otherwise log the whole page with
    a traceback, and take a 200 page for a success it then fails to parse.
    """
    status = code if code >= 400 else 502
    description = f"not the Bot API's answer: HTTP {code}, {len(payload)} bytes that are not JSON"
    body = {"ok": False, "error_code": status, "description": description}
    return status, json.dumps(body).encode()


def _body(
    request_data: RequestData | None,
) -> tuple[bytes | aiohttp.FormData | None, dict[str, str] | None, bool]:
    """The request's body and its headers, as HTTPXRequest sends them; and whether it has files."""
    if request_data is None:
        return None, None, False
    if request_data.contains_files:
        form = aiohttp.FormData()
        for name, value in request_data.json_parameters.items():
            form.add_field(name, value)
        for name, (filename, content, mime_type) in request_data.multipart_data.items():
            form.add_field(name, content, content_type=mime_type, filename=filename)
        return form, None, True
    parameters = request_data.url_encoded_parameters()
    if not parameters:
        return None, None, False
    return parameters.encode(), _FORM, False


def _description(payload: bytes) -> str:
    """Telegram's `description` of a failed call ("Bad Request: chat not found"), if any."""
    try:
        found = json.loads(payload).get("description")
    except (ValueError, AttributeError):
        return ""
    return found if isinstance(found, str) else ""
