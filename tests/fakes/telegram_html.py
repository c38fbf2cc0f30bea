"""A strict parser of Telegram's HTML subset (parse_mode=HTML): visible text and entities.

Stricter than Telegram on purpose: every "&" must start one of the supported entities and
every "<" must start an allowed tag, so escaping bugs in the bot fail loudly in tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_SPECIAL = re.compile(r"[<&]")
_ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z][a-zA-Z0-9]*));")
_END_TAG = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)\s*>")
_ATTR = r"""\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
_START_TAG = re.compile(rf"<([a-zA-Z][a-zA-Z0-9-]*)((?:{_ATTR})*)\s*>")
_ONE_ATTR = re.compile(
    r"""\s+([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"""
)
# Only these four named entities are supported (Bot API docs, "HTML style").
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
_OTHER_TAGS = {"a", "span", "blockquote", "tg-emoji"}


class HtmlError(ValueError):
    """The text is not valid Telegram HTML; str() is Telegram's reason."""


def utf16_len(text: str) -> int:
    """Telegram measures text and entity offsets in UTF-16 code units."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


class _BadEntity(ValueError):
    pass


def _entity_at(text: str, at: int) -> tuple[str, int]:
    """The character an entity starting at `at` stands for, and where the entity ends."""
    match = _ENTITY.match(text, at)
    if match is None:
        raise _BadEntity('Unescaped "&": use &amp; or a character entity')
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        if name not in _NAMED:
            raise _BadEntity(f'Unsupported HTML entity "&{name};"')
        return _NAMED[name], match.end()
    code = int(decimal) if decimal is not None else int(hexadecimal, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise _BadEntity(f"Invalid character entity {match.group()}")
    return chr(code), match.end()


@dataclass
class _Open:
    tag: str
    entity: dict[str, Any] | None  # None: a <code class="language-x"> that only labels its <pre>
    start: int
    extra: dict[str, Any] = field(default_factory=dict)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.out: list[str] = []
        self.length = 0
        self.stack: list[_Open] = []
        self.entities: list[dict[str, Any]] = []

    def error(self, reason: str, at: int) -> HtmlError:
        offset = len(self.source[:at].encode())
        return HtmlError(f"{reason} at byte offset {offset}")

    def emit(self, chunk: str) -> None:
        self.out.append(chunk)
        self.length += utf16_len(chunk)

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        source, pos = self.source, 0
        while (match := _SPECIAL.search(source, pos)) is not None:
            if match.start() > pos:
                self.emit(source[pos : match.start()])
            if match.group() == "&":
                char, pos = self.entity(match.start())
                self.emit(char)
            else:
                pos = self.tag(match.start())
        if pos < len(source):
            self.emit(source[pos:])
        if self.stack:
            raise HtmlError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"'
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def entity(self, at: int) -> tuple[str, int]:
        try:
            return _entity_at(self.source, at)
        except _BadEntity as exc:
            raise self.error(str(exc), at) from None

    def decode(self, value: str, at: int) -> str:
        """An attribute value, with its entities decoded by the same strict rules."""
        if "&" not in value:
            return value
        parts, pos = [], 0
        try:
            while (amp := value.find("&", pos)) != -1:
                parts.append(value[pos:amp])
                char, pos = _entity_at(value, amp)
                parts.append(char)
        except _BadEntity as exc:
            raise self.error(f"{exc} in an attribute value of the tag", at) from None
        parts.append(value[pos:])
        return "".join(parts)

    def tag(self, at: int) -> int:
        if (end := _END_TAG.match(self.source, at)) is not None:
            self.close(end.group(1).lower(), at)
            return end.end()
        start = _START_TAG.match(self.source, at)
        if start is None:
            raise self.error('Unexpected "<": escape it as &lt;', at)
        name = start.group(1).lower()
        attrs = {
            m.group(1).lower(): self.decode(m.group(2) or m.group(3) or m.group(4) or "", at)
            for m in _ONE_ATTR.finditer(start.group(2))
        }
        self.open(name, attrs, at)
        return start.end()

    def open(self, name: str, attrs: dict[str, str], at: int) -> None:
        if name not in _SIMPLE_TAGS and name not in _OTHER_TAGS:
            raise self.error(f'Unsupported start tag "{name}"', at)
        parent = self.stack[-1] if self.stack else None
        entity: dict[str, Any] | None
        if name == "code" and parent is not None and parent.tag == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-") and len(language) > len("language-"):
                parent.extra["language"] = language.removeprefix("language-")
                self.stack.append(_Open(name, None, self.length))
                return
        if name in _SIMPLE_TAGS:
            entity = {"type": _SIMPLE_TAGS[name]}
        elif name == "span":
            if attrs.get("class") != "tg-spoiler":
                raise self.error('Tag "span" must have class "tg-spoiler"', at)
            entity = {"type": "spoiler"}
        elif name == "a":
            if not attrs.get("href"):
                raise self.error('Tag "a" must have attribute "href"', at)
            entity = {"type": "text_link", "url": attrs["href"]}
        elif name == "blockquote":
            entity = {"type": "expandable_blockquote" if "expandable" in attrs else "blockquote"}
        else:  # tg-emoji
            if not attrs.get("emoji-id"):
                raise self.error('Tag "tg-emoji" must have attribute "emoji-id"', at)
            entity = {"type": "custom_emoji", "custom_emoji_id": attrs["emoji-id"]}
        self.stack.append(_Open(name, entity, self.length))

    def close(self, name: str, at: int) -> None:
        if not self.stack:
            raise self.error(f'Unexpected end tag "</{name}>"', at)
        top = self.stack[-1]
        if top.tag != name:
            raise self.error(f'Unmatched end tag, expected "</{top.tag}>", found "</{name}>"', at)
        self.stack.pop()
        length = self.length - top.start
        if top.entity is not None and length > 0:  # Telegram drops empty entities
            self.entities.append({**top.entity, **top.extra, "offset": top.start, "length": length})


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Visible text and MessageEntity dicts (offsets in UTF-16), or HtmlError."""
    return _Parser(source).run()
