"""One schema for a job's fields, and how each backend keeps them (SQLite columns, Redis text).

A new Job field without an entry here fails at import: no backend can drop it silently.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, Literal

from bot.store.base import Job, JobStatus, NewJob

Kind = Literal["int", "float", "str", "bool", "ints", "status"]

SCHEMA: dict[str, Kind] = {
    "chat_id": "int",
    "message_id": "int",
    "user_id": "int",
    "chat_type": "str",
    "kind": "str",
    "file_id": "str",
    "file_unique_id": "str",
    "model": "str",
    "duration": "float",
    "file_size": "int",
    "file_name": "str",
    "mime_type": "str",
    "language_code": "str",
    "explicit": "bool",
    "language": "str",
    "prompt": "str",
    "quiet": "bool",
    "sender_name": "str",
    "replaces": "ints",
    "id": "int",
    "status": "status",
    "attempts": "int",
    "placeholder_id": "int",
    "error": "str",
    "created_at": "float",
    "reply_ids": "ints",
    "audio_seconds": "float",
    "lease_owner": "str",
    "epoch": "int",
    "sent_ids": "ints",
    "sent_digest": "str",
    "file_sent": "bool",
}

JOB_FIELDS = tuple(f.name for f in fields(Job))
NEW_JOB_FIELDS = tuple(f.name for f in fields(NewJob))
if set(SCHEMA) != set(JOB_FIELDS):
    raise RuntimeError(f"codec.SCHEMA and Job differ: {set(SCHEMA) ^ set(JOB_FIELDS)}")

_FROM_TEXT: dict[Kind, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": lambda raw: raw == "1",
    "ints": lambda raw: tuple(int(n) for n in json.loads(raw)),
    "status": JobStatus,
}


def to_text(name: str, value: object) -> str | None:
    """A field as a Redis hash keeps it; None is an absent field."""
    if value is None:
        return None
    kind = SCHEMA[name]
    if kind == "bool":
        return "1" if value else "0"
    if kind == "ints":
        return json.dumps(list(value))  # type: ignore[call-overload]
    if kind == "float":
        return repr(float(value))  # type: ignore[arg-type]
    return str(value)


def to_column(name: str, value: object) -> object:
    """A field as a SQLite column keeps it."""
    kind = SCHEMA[name]
    if kind == "ints":
        return json.dumps(list(value))  # type: ignore[call-overload]
    if kind == "bool":
        return int(bool(value))
    if kind == "status" and value is not None:
        return str(value)
    return value


def new_job_columns(job: NewJob) -> list[object]:
    return [to_column(name, getattr(job, name)) for name in NEW_JOB_FIELDS]


def new_job_pairs(job: NewJob) -> list[str]:
    """field, value, field, value... for a Redis HSET (None fields left out)."""
    pairs: list[str] = []
    for name in NEW_JOB_FIELDS:
        text = to_text(name, getattr(job, name))
        if text is not None:
            pairs += [name, text]
    return pairs


def from_text(found: Mapping[str, str]) -> Job:
    """A job from a Redis hash (fields the Job does not know are ignored)."""
    return Job(
        **{n: _FROM_TEXT[SCHEMA[n]](found[n]) for n in JOB_FIELDS if found.get(n) is not None}
    )


def from_columns(row: sqlite3.Row) -> Job:
    """A job from a SQLite row (sqlite3.Row or dict)."""
    values: dict[str, Any] = {}
    for name in JOB_FIELDS:
        raw = row[name]
        kind = SCHEMA[name]
        if raw is None:
            continue
        if kind == "ints":
            values[name] = tuple(int(n) for n in json.loads(raw))
        elif kind == "bool":
            values[name] = bool(raw)
        elif kind == "status":
            values[name] = JobStatus(raw)
        else:
            values[name] = raw
    return Job(**values)
