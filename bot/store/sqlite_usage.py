"""SQLite's statistics for /stats: one read over jobs and usage."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from bot.store.base import DAY, Stats


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
    return Stats(
        by_status={str(r[0]): int(r[1]) for r in rows("SELECT status, n FROM job_counts") if r[1]},
        minutes_by_model={str(r[0]): float(r[1] or 0) / 60 for r in models},
        minutes_by_day=by_day,
        top_chats=[(int(r[0]), int(r[1]), float(r[2]) / 60) for r in chats],
        recent_failures=[(int(r[0]), str(r[1])) for r in failed],
    )
