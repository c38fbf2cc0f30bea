"""SQLite's statistics for /stats (one read over jobs and usage), and usage totals."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from bot.store.base import DAY, Stats, UsageKind, UsageTotal


def stats(db: sqlite3.Connection, days: int) -> Stats:
    def rows(sql: str, *params: Any) -> list[sqlite3.Row]:
        return db.execute(sql, params).fetchall()

    now = time.time()
    since = now - now % DAY - (days - 1) * DAY
    by_day: dict[str, dict[str, float]] = {}
    for day, model, seconds in rows(
        "SELECT date(at, 'unixepoch'), model, sum(audio_seconds) FROM usage "
        "WHERE at>=? AND audio_seconds>0 GROUP BY 1, 2 ORDER BY 1 DESC, 2",
        since,
    ):
        by_day.setdefault(str(day), {})[str(model)] = float(seconds) / 60
    models = rows("SELECT model, sum(audio_seconds) FROM usage WHERE audio_seconds>0 GROUP BY 1")
    chats = rows(
        "SELECT chat_id, count(*), sum(audio_seconds) FROM usage WHERE audio_seconds>0 "
        "GROUP BY chat_id ORDER BY 3 DESC LIMIT 5"
    )
    failed = rows(
        "SELECT id, error FROM jobs WHERE status='failed' ORDER BY finished_at DESC LIMIT 5"
    )
    chat = rows(
        "SELECT model, count(*), 0, sum(input_tokens), sum(output_tokens), kind FROM usage "
        "WHERE kind!='transcription' GROUP BY model, kind ORDER BY model, kind"
    )
    return Stats(
        by_status={str(r[0]): int(r[1]) for r in rows("SELECT status, n FROM job_counts") if r[1]},
        minutes_by_model={str(r[0]): float(r[1] or 0) / 60 for r in models},
        minutes_by_day=by_day,
        top_chats=[(int(r[0]), int(r[1]), float(r[2]) / 60) for r in chats],
        recent_failures=[(int(r[0]), str(r[1])) for r in failed],
        chat_usage=[usage_total(r) for r in chat],
    )


def usage_total(row: sqlite3.Row) -> UsageTotal:
    """From (model, count, audio seconds, input tokens, output tokens, kind)."""
    model, count, seconds, tokens_in, tokens_out, kind = row
    return UsageTotal(
        str(model), int(count), float(seconds), int(tokens_in), int(tokens_out), UsageKind(kind)
    )
