"""Links to recordings: find one in a message, turn share links into downloads, vet addresses.

Fetching what a stranger names is server-side request forgery waiting to happen (OWASP's SSRF
cheat sheet): only http(s), and every address a link leads to must be on the public internet.
The download itself, which connects to the addresses checked here, is bot.link_download.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

from telegram import Message, MessageEntity
from yarl import URL

from bot.config import Network
from bot.errors import LinkNotAllowed, LinkPrivate

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

KIND: Final = "link"  # the job kind; the job's file_id holds the URL
SCHEMES = frozenset({"http", "https"})
MAX_URL_LENGTH = 2048
# Anything with a scheme, so that "ftp://..." is answered rather than ignored.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]{0,15}://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}»\"'"
_DRIVE_FILE = re.compile(r"^/file/d/([A-Za-z0-9_-]+)")
# Google Drive answers a large file's download with a page ("can't scan this file for
# viruses") whose form leads to the file; these hosts' pages are read for it.
DRIVE_HOSTS = frozenset({"drive.google.com", "drive.usercontent.google.com"})
_LEGACY_IPV4_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
# NAT64's well-known prefix: the IPv4 address it reaches is in the last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def link_in(message: Message | None) -> str | None:
    """The first link in a message's text or caption (hidden text links included)."""
    if message is None:
        return None
    entities = message.entities or message.caption_entities or ()
    for entity in entities:
        if entity.type == MessageEntity.TEXT_LINK and entity.url:
            return entity.url
    found = _URL.search(message.text or message.caption or "")
    if found is None:
        return None
    url = found.group(0).rstrip(_TRAILING)
    if url.endswith(")") and "(" not in url:
        url = url.rstrip(")")
    return url


def link_key(url: str, chat_id: int) -> str:
    """Stands in for Telegram's file_unique_id: the same link in the same chat gives the same
    cached transcript. Not across chats: unlike a file id, a link can stop working (a share
    revoked, a signed URL expired), and whoever sends it later must be able to fetch it."""
    return "link:" + hashlib.sha256(f"{chat_id}\0{url}".encode()).hexdigest()[:40]


def file_name_of(url: str) -> str | None:
    try:
        name = URL(url).name
    except ValueError:
        return None
    return name[:200] or None


def direct_url(url: str) -> str:
    """The direct-download form of a Google Drive, Dropbox or OneDrive share link."""
    try:
        parsed = URL(url)
    except ValueError:
        return url
    host = (parsed.host or "").lower()
    if host == "drive.google.com":
        match = _DRIVE_FILE.match(parsed.path)
        file_id = match.group(1) if match else parsed.query.get("id")
        if file_id:
            query = {"export": "download", "id": file_id}
            return str(URL.build(scheme="https", host=host, path="/uc", query=query))
    if host in ("dropbox.com", "www.dropbox.com"):
        return str(parsed.update_query(dl="1"))
    # 1drv.ms short links redirect here; the target takes download=1 (bot.link_download
    # passes every redirect target through this function).
    if host == "onedrive.live.com" or host.endswith(".sharepoint.com"):
        return str(parsed.update_query(download="1"))
    return url


def drive_confirmation(page: str, base: URL) -> str | None:
    """The download behind Google Drive's confirmation page for a large file: its download
    form's action with the form's hidden fields. None when the page has no such form, or the
    form leads off Google Drive."""
    form = _DownloadForm()
    form.feed(page)
    form.close()
    if form.action is None:
        return None
    try:
        target = base.join(URL(form.action)).with_query(form.fields)
    except ValueError:
        return None
    return str(target) if (target.host or "").lower() in DRIVE_HOSTS else None


class _DownloadForm(HTMLParser):
    """The first form that downloads (id "download-form", or an action ending in /download or
    /uc), and its hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form" and self.action is None:
            action = found.get("action", "")
            path = action.split("?", 1)[0].rstrip("/")
            if found.get("id") == "download-form" or path.endswith(("/download", "/uc")):
                self.action, self._inside = action, True
        elif (
            tag == "input" and self._inside and found.get("type") == "hidden" and found.get("name")
        ):
            self.fields[found["name"]] = found.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses links may reach: the public internet, plus what the operator allows."""

    allow_private: bool = False  # LINK_ALLOW_PRIVATE_NETWORKS: tests and home networks
    allowed: frozenset[Network] = frozenset()  # LINK_ALLOWED_NETWORKS

    def allows(self, ip: IPAddress) -> bool:
        if any(ip in network for network in self.allowed):
            return True
        if self.allow_private:
            return not (ip.is_unspecified or ip.is_multicast)
        return is_public(ip)

    def check_url(self, url: str) -> URL:
        """The URL parsed, when it may be fetched; the address too when the host is a number.

        Names are checked where they are resolved (bot.link_download), once per connection.
        """
        if len(url) > MAX_URL_LENGTH:
            raise LinkNotAllowed("the link is too long")
        try:
            parsed = URL(url)
        except ValueError as exc:
            raise LinkNotAllowed("the link is malformed") from exc
        if parsed.scheme.lower() not in SCHEMES:
            raise LinkNotAllowed(f"scheme {parsed.scheme!r} is not http(s)")
        if not parsed.host:
            raise LinkNotAllowed("the link has no host")
        ip = host_address(parsed.host)
        if ip is not None and not self.allows(ip):
            raise LinkPrivate(f"{ip} is not a public address")
        return parsed


def is_public(ip: IPAddress) -> bool:
    """On the public internet: not private, loopback, link-local, multicast, reserved..."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return False  # ::ffff:a.b.c.d reaches a.b.c.d, past IPv6-only rules
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def host_address(host: str) -> IPAddress | None:
    """The address a host names by itself: 1.2.3.4, [::1], and inet_aton's legacy forms
    (2130706433, 0x7f.1, 0177.0.0.1) that resolvers turn into addresses too."""
    host = host.strip("[]")
    if host.endswith("."):
        host = host[:-1]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    return _legacy_ipv4(host)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_LEGACY_IPV4_PART.match(p) for p in parts):
        return None
    try:
        numbers = [_number(p) for p in parts]
    except ValueError:  # "09": not octal, so not an address (a resolver fails on it)
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _number(part: str) -> int:
    """One part as inet_aton reads it: 0x.. hexadecimal, 0.. octal, else decimal."""
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)
