"""Text to Telegram messages: escaping, splitting, the .txt attachment."""

from __future__ import annotations

import html

# Telegram: "1-4096 characters after entities parsing". We count UTF-16 code units, the unit
# Telegram measures entities in, which is never fewer than Python's characters.
MESSAGE_LIMIT = 4096
# Past this many messages the transcript also goes as a .txt file, easier to read and keep.
ATTACH_AFTER_MESSAGES = 4


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Escape for parse_mode=HTML: only <, > and & are special there."""
    return html.escape(text, quote=False)


def split_for_telegram(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split at whitespace into pieces of at most `limit` UTF-16 units each."""
    text = text.strip()
    pieces: list[str] = []
    while text:
        if utf16_len(text) <= limit:
            pieces.append(text)
            break
        window = _fit(text, limit)
        cut = _last_space(text, window)
        piece, text = text[:cut].rstrip(), text[cut:].lstrip()
        if piece:
            pieces.append(piece)
    return pieces


def tail_that_fits(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The end of `text`: as many trailing characters as fit in `limit` UTF-16 units."""
    backwards = text[::-1]
    return backwards[: _fit(backwards, limit)][::-1]


def _fit(text: str, limit: int) -> int:
    """The most leading characters of `text` that fit in `limit` UTF-16 units."""
    end = min(len(text), limit)
    while utf16_len(text[:end]) > limit:
        end -= max(1, (utf16_len(text[:end]) - limit) // 2)
    return end


def _last_space(text: str, end: int) -> int:
    """Where to cut within text[:end]: after the last whitespace, else a hard cut at end."""
    if end < len(text) and text[end].isspace():
        return end
    for index in range(end - 1, max(end // 2, 0) - 1, -1):
        if text[index].isspace():
            return index + 1
    # No whitespace in the second half of the window (a long URL, or a script without
    # spaces): cut hard rather than produce a tiny piece.
    return end
