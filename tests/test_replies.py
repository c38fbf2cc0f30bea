"""Splitting and escaping transcripts for Telegram."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.replies import escape, split_for_telegram, utf16_len


def test_short_text_is_one_piece() -> None:
    assert split_for_telegram("  hello world ") == ["hello world"]


def test_empty_text_has_no_pieces() -> None:
    assert split_for_telegram("   ") == []


def test_long_text_is_split_at_whitespace_under_the_limit() -> None:
    words = [f"word{i}" for i in range(3000)]
    pieces = split_for_telegram(" ".join(words), limit=4096)
    assert len(pieces) > 1
    assert all(utf16_len(p) <= 4096 for p in pieces)
    assert " ".join(pieces).split() == words  # no word cut in half, none lost


def test_text_without_spaces_is_cut_hard() -> None:
    pieces = split_for_telegram("x" * 10_000, limit=4096)
    assert [len(p) for p in pieces] == [4096, 4096, 1808]


def test_astral_characters_count_twice() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units
    pieces = split_for_telegram(text, limit=4096)
    assert all(utf16_len(p) <= 4096 for p in pieces)
    assert "".join(pieces) == text


def test_escape_keeps_html_hostile_text_intact() -> None:
    assert escape("1 < 2 & <b>") == "1 &lt; 2 &amp; &lt;b&gt;"


@given(st.text(min_size=0, max_size=3000), st.integers(min_value=8, max_value=600))
def test_split_never_exceeds_the_limit_and_keeps_all_words(text: str, limit: int) -> None:
    pieces = split_for_telegram(text, limit=limit)
    assert all(0 < utf16_len(p) <= limit for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())
