"""Download what a link names to a file: only public addresses, bounded in size and time.

The connection goes to the addresses that were checked: aiohttp asks our resolver, which
resolves each host once, refuses the lot when any address is not allowed (bot.links), and
hands aiohttp exactly those addresses (TLS still verifies the certificate for the host name).
Redirects are followed here, not by aiohttp, so that every hop is checked the same way.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.config import Settings
from bot.errors import (
    LinkNotAllowed,
    LinkNotMedia,
    LinkPrivate,
    LinkTooBig,
    LinkTooSlow,
    LinkUnreachable,
)
from bot.links import DRIVE_HOSTS, AddressPolicy, direct_url, drive_confirmation, host_address

__all__ = ["AddressPolicy", "CheckedResolver", "LinkDownloader"]

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
CONNECT_SECONDS = 10.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
_CHUNK = 1 << 16
_PAGE_BYTES = 256 * 1024  # read of a Google Drive confirmation page, at most
MB = 1024 * 1024

Progress = Callable[[int, int | None], None]  # bytes so far, bytes announced


class _Refused(OSError):
    """Raised inside aiohttp's connector by our resolver; becomes LinkPrivate."""


class CheckedResolver(AbstractResolver):
    """Resolves through `inner` and gives aiohttp only addresses the policy allows."""

    def __init__(self, inner: AbstractResolver, policy: AddressPolicy) -> None:
        self._inner = inner
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = host_address(host)
        if literal is not None:
            # A legacy numeric form (0x7f.1): use the address it names, no lookup.
            found_family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            results: list[ResolveResult] = [
                ResolveResult(
                    hostname=host,
                    host=str(literal),
                    port=port,
                    family=found_family,
                    proto=0,
                    flags=0,
                )
            ]
        else:
            results = await self._inner.resolve(host, port, family)
        for result in results:
            ip = host_address(result["host"].partition("%")[0])
            if ip is None or not self._policy.allows(ip):
                raise _Refused(f"{host} resolves to {result['host']}, not a public address")
        if not results:
            raise OSError(f"{host} has no address")
        return results

    async def close(self) -> None:
        """The inner resolver belongs to whoever made it."""


class LinkDownloader:
    """Fetches links to files; one per bot, a fresh connection pool per download."""

    def __init__(self, settings: Settings, resolver: AbstractResolver | None = None) -> None:
        self.limit = settings.link_max_mb * MB
        self._policy = AddressPolicy(
            settings.link_allow_private_networks, settings.link_allowed_networks
        )
        self._total = settings.link_timeout_seconds
        self._timeout = aiohttp.ClientTimeout(
            total=settings.link_timeout_seconds,
            sock_connect=CONNECT_SECONDS,
            sock_read=settings.link_idle_seconds,
        )
        self._resolver = resolver

    async def download(self, url: str, dest: Path, progress: Progress | None = None) -> int:
        """Save the file behind `url` at `dest`; its size. Raises a LinkError subclass."""
        resolver = CheckedResolver(self._resolver or aiohttp.ThreadedResolver(), self._policy)
        # No DNS cache: a cached answer would be an address checked for another download.
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            trust_env=False,  # no proxy from the environment: it would connect for us
            headers={"User-Agent": "Transcribot", "Accept-Encoding": "identity"},
        ) as session:
            try:
                async with asyncio.timeout(self._total):
                    return await self._follow(session, url, dest, progress)
            except TimeoutError as exc:
                raise LinkTooSlow("the server was too slow") from exc
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, _Refused):
                    raise LinkPrivate(str(exc.os_error)) from exc
                raise LinkUnreachable(f"cannot connect: {exc.os_error}") from exc
            except aiohttp.InvalidURL as exc:
                raise LinkNotAllowed("the link is malformed") from exc
            except aiohttp.ClientError as exc:
                raise LinkUnreachable(f"download failed: {type(exc).__name__}") from exc

    async def _follow(
        self, session: aiohttp.ClientSession, url: str, dest: Path, progress: Progress | None
    ) -> int:
        for _ in range(MAX_REDIRECTS + 1):
            target = self._policy.check_url(url)
            async with session.get(target, allow_redirects=False) as response:
                if response.status in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise LinkUnreachable("a redirect without a Location", response.status)
                    url = direct_url(str(target.join(URL(location))))
                    continue
                if response.status != 200:
                    raise LinkUnreachable(f"HTTP {response.status}", response.status)
                if response.content_type in _HTML_TYPES and target.host in DRIVE_HOSTS:
                    url = await _past_drive_page(response, target)  # a hop, like a redirect
                    continue
                return await self._save(response, dest, progress)
        raise LinkUnreachable(f"more than {MAX_REDIRECTS} redirects")

    async def _save(
        self, response: aiohttp.ClientResponse, dest: Path, progress: Progress | None
    ) -> int:
        """Stream to disk, counting bytes: Content-Length is a hint, not a limit."""
        if response.content_type in _HTML_TYPES:
            raise LinkNotMedia(f"the link answers {response.content_type}")
        announced = response.content_length
        if announced is not None and announced > self.limit:
            raise LinkTooBig(self.limit)
        received = 0
        with dest.open("wb") as out:
            async for chunk in response.content.iter_chunked(_CHUNK):
                if received == 0 and chunk.lstrip()[:16].lower().startswith(_HTML_STARTS):
                    raise LinkNotMedia("the link answers a web page")
                received += len(chunk)
                if received > self.limit:
                    raise LinkTooBig(self.limit)
                out.write(chunk)
                if progress is not None:
                    progress(received, announced)
        if received == 0:
            raise LinkNotMedia("the link answers nothing")
        return received


async def _past_drive_page(response: aiohttp.ClientResponse, target: URL) -> str:
    """Where Google Drive's confirmation page for a large file leads (its download form)."""
    page = await response.content.read(_PAGE_BYTES)
    found = drive_confirmation(page.decode("utf-8", errors="replace"), target)
    if found is None:
        raise LinkNotMedia("a Google Drive page without a download form")
    return found
