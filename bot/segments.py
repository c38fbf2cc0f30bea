"""Timed pieces of a transcript: paragraphs headed by time or speaker, and .srt subtitles."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# A recording longer than this is shown in paragraphs headed by their start time ("a few
# minutes": a voice note reads fine as one block).
TIMESTAMPS_AFTER_SECONDS = 180.0
# A new timed paragraph starts at the first segment this long after the paragraph's start.
PARAGRAPH_SECONDS = 60.0


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: seconds from the recording's start, its text, who said it."""

    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Transcribed:
    """A transcript as the engine gave it: the plain text, its segments and its language (ISO
    639-1) when it told them."""

    text: str
    segments: tuple[Segment, ...] = ()
    language: str | None = None


def parse(items: Any) -> tuple[Segment, ...]:
    """The segments of a verbose_json or diarized_json answer (malformed ones skipped)."""
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        start, end = item.get("start"), item.get("end")
        if not isinstance(start, int | float) or not isinstance(end, int | float):
            continue
        if not _is_time(start) or not _is_time(end):
            continue
        speaker = item.get("speaker")
        found.append(
            Segment(
                float(start),
                float(end),
                item["text"].strip(),
                str(speaker) if isinstance(speaker, str | int) and str(speaker) else None,
            )
        )
    return tuple(s for s in found if s.text)


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def shifted(segments: Iterable[Segment], offset: float) -> tuple[Segment, ...]:
    """The segments of a part, moved to where the part starts in the recording."""
    return tuple(Segment(s.start + offset, s.end + offset, s.text, s.speaker) for s in segments)


def encode(segments: Iterable[Segment]) -> str:
    return json.dumps([[s.start, s.end, s.text, s.speaker] for s in segments], ensure_ascii=False)


def decode(stored: str) -> tuple[Segment, ...]:
    """What encode() wrote; () for anything else."""
    try:
        rows = json.loads(stored)
    except json.JSONDecodeError:
        return ()
    items = [
        {"start": row[0], "end": row[1], "text": row[2], "speaker": row[3]}
        for row in rows
        if isinstance(row, list) and len(row) == 4
    ]
    return parse(items) if isinstance(rows, list) else ()


def clock(seconds: float) -> str:
    """03:15, or 1:03:15 past an hour."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def layout(result: Transcribed, speaker: Callable[[str], str]) -> str:
    """The text as shown: one paragraph per speaker's turn, or per minute of a long recording,
    headed by who ("Speaker A", through `speaker`) and when ("[03:15]"); else the plain text."""
    segments = result.segments
    if not segments:
        return result.text
    speakers = any(s.speaker for s in segments)
    timed = max(s.end for s in segments) > TIMESTAMPS_AFTER_SECONDS
    if not speakers and not timed:
        return result.text
    paragraphs: list[tuple[Segment, list[str]]] = []
    for segment in segments:
        if not paragraphs or _starts_paragraph(paragraphs[-1][0], segment, speakers):
            paragraphs.append((segment, []))
        paragraphs[-1][1].append(segment.text)
    return "\n\n".join(
        _heading(first, speakers, timed, speaker) + "\n" + " ".join(texts)
        for first, texts in paragraphs
    )


def _starts_paragraph(first: Segment, segment: Segment, speakers: bool) -> bool:
    if speakers:
        return segment.speaker != first.speaker
    return segment.start - first.start >= PARAGRAPH_SECONDS


def _heading(first: Segment, speakers: bool, timed: bool, speaker: Callable[[str], str]) -> str:
    stamp = f"[{clock(first.start)}]" if timed else ""
    if not speakers:
        return stamp
    who = speaker(first.speaker or "?")
    return f"{who} {stamp}" if stamp else who


def _srt_time(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def to_srt(segments: Iterable[Segment], speaker: Callable[[str], str] | None = None) -> str:
    """SubRip subtitles: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, the text (with its
    speaker in front when known)."""
    cues = []
    for number, s in enumerate(segments, 1):
        text = " ".join(s.text.split())
        if s.speaker and speaker is not None:
            text = f"{speaker(s.speaker)}: {text}"
        end = max(s.end, s.start + 0.001)
        cues.append(f"{number}\n{_srt_time(s.start)} --> {_srt_time(end)}\n{text}\n")
    return "\n".join(cues)
