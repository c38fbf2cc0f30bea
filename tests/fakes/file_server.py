"""A web server that links point to: files, pages, redirects, slow and oversized answers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from tests.fakes._server import CallLog, FakeServer


@dataclass(frozen=True)
class FileRequest:
    path: str
    host: str
    query: str = ""  # the query string, as sent


class FakeFileServer(FakeServer):
    """Serves what a test puts at a path, and records every request (path and Host header).

    - put(path, data, content_type, length=True): a file; length=False sends it chunked,
      without Content-Length.
    - redirect(path, location, status=302): a redirect.
    - stall(path, first=b"", seconds=...): headers and `first`, then nothing for that long.
    - trickle(path, chunk, every, times): a chunk every `every` seconds.
    - slow(path, data, pieces, every, length=True): a file in `pieces` pieces, one every
      `every` seconds; length=False: chunked, without Content-Length.
    """

    def __init__(self) -> None:
        super().__init__()
        self.log: CallLog[FileRequest] = CallLog(lambda r: f"GET {r.path} (Host: {r.host})")
        self._files: dict[str, tuple[bytes, str, bool]] = {}
        self._redirects: dict[str, tuple[str, int]] = {}
        self._stalls: dict[str, tuple[bytes, float]] = {}
        self._trickles: dict[str, tuple[bytes, float, int]] = {}
        self._slow: dict[str, tuple[bytes, int, float, bool]] = {}
        self._release = asyncio.Event()

    @property
    def requests(self) -> list[FileRequest]:
        return self.log.items

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def put(
        self, path: str, data: bytes, content_type: str = "audio/mpeg", *, length: bool = True
    ) -> str:
        self._forget(path)
        self._files[path] = (data, content_type, length)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self._forget(path)
        self._redirects[path] = (location, status)
        return self.url(path)

    def stall(self, path: str, first: bytes = b"", seconds: float = 30.0) -> str:
        self._forget(path)
        self._stalls[path] = (first, seconds)
        return self.url(path)

    def trickle(self, path: str, chunk: bytes, every: float, times: int) -> str:
        self._forget(path)
        self._trickles[path] = (chunk, every, times)
        return self.url(path)

    def slow(
        self, path: str, data: bytes, pieces: int, every: float, *, length: bool = True
    ) -> str:
        self._forget(path)
        self._slow[path] = (data, pieces, every, length)
        return self.url(path)

    def remove(self, path: str) -> None:
        """The link stops working (revoked, expired): 404 from now on."""
        self._forget(path)

    def _forget(self, path: str) -> None:
        """A path serves one thing at a time: the last one put there."""
        for table in (self._files, self._redirects, self._stalls, self._trickles, self._slow):
            table.pop(path, None)

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._handle)
        return app

    def _before_stop(self) -> None:
        self._release.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.log.append(FileRequest(path, request.headers.get("Host", ""), request.query_string))
        if path in self._redirects:
            location, status = self._redirects[path]
            return web.Response(status=status, headers={"Location": location})
        if path in self._stalls:
            first, seconds = self._stalls[path]
            return await self._stream(request, [first], seconds)
        if path in self._trickles:
            chunk, every, times = self._trickles[path]
            return await self._stream(request, [chunk] * times, every)
        if path in self._slow:
            data, pieces, every, length = self._slow[path]
            size = -(-len(data) // pieces)
            chunks = [data[i : i + size] for i in range(0, len(data), size)]
            return await self._stream(request, chunks, every, len(data) if length else None)
        if path not in self._files:
            return web.Response(status=404, text="not found")
        data, content_type, length = self._files[path]
        if length:
            return web.Response(body=data, content_type=content_type)
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 1 << 16):
            await response.write(data[start : start + (1 << 16)])
        await response.write_eof()
        return response

    async def _stream(
        self, request: web.Request, chunks: list[bytes], pause: float, length: int | None = None
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        if length is None:
            response.enable_chunked_encoding()
        else:
            response.content_length = length
        await response.prepare(request)
        for chunk in chunks:
            if chunk:
                await response.write(chunk)
            try:  # the stop of the server ends the wait
                await asyncio.wait_for(self._release.wait(), pause)
                break
            except TimeoutError:
                pass
        return response
