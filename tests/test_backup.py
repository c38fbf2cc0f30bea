"""`python -m bot backup` under load, then `restore`: the restored bot answers every queued job."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import (
    BotFactory,
    ProcessFactory,
    RunningBot,
    eventually,
    free_port,
    process_env,
    voice_message,
)
from tests.fakes import FakeTelegram, FakeTranscriptionAPI

NOTES = 24
TEXT = "kept safe in the backup"


async def command(
    tg: FakeTelegram, api: FakeTranscriptionAPI, home: Path, db: Path, *args: str
) -> tuple[int, str]:
    """`python -m bot ARGS` with the bot's settings and DATABASE_URL=db; exit code and output."""
    env = process_env(tg, api, home, free_port(), DATABASE_URL=f"sqlite:///{db}")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def waiting_jobs(db: Path) -> list[tuple[int, int]]:
    """(chat_id, message_id) of every job queued or running in a database file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT chat_id, message_id FROM jobs WHERE status IN ('queued', 'running')"
        ).fetchall()
    return [(int(c), int(m)) for c, m in rows]


async def deliver_notes(
    bot: RunningBot, tg: FakeTelegram, voice_bytes: bytes, accepted: list[int]
) -> None:
    """Deliver NOTES notes one after another; `accepted` gets each one's chat once answered 200."""
    for n in range(NOTES):
        update = voice_message(tg, voice_bytes, chat_id=9000 + n)
        assert (await bot.deliver(update)).status_code == 200
        accepted.append(9000 + n)
        await asyncio.sleep(0.01)


async def test_a_backup_taken_under_load_restores_to_a_bot_that_answers_every_queued_job(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    tmp_path: Path,
) -> None:
    live, copy, restored = tmp_path / "live.sqlite3", tmp_path / "backup.sqlite3", tmp_path / "r"
    api.set_transcript(voice_bytes, TEXT)
    api.delay = 60  # nothing finishes while the first bot runs: every job stays to be answered
    async with bot_factory(
        database_url=f"sqlite:///{live}", max_concurrent_jobs=2, shutdown_grace_seconds=0
    ) as bot:
        accepted: list[int] = []
        deliveries = asyncio.create_task(deliver_notes(bot, tg, voice_bytes, accepted))
        # Both workers' jobs are running (their placeholders are out), four or more notes are
        # accepted, and more are arriving.
        await tg.wait_calls("sendMessage", 2)
        await eventually(lambda: len(accepted) >= 4, what="four notes accepted")
        code, out = await command(tg, api, tmp_path, live, "backup", str(copy))
        assert code == 0, out
        await deliveries
    saved = waiting_jobs(copy)
    assert len(saved) >= 4, "the backup holds the jobs accepted before it"
    assert f"{len(saved)} jobs queued or running" in out

    new_db = restored / "bot.sqlite3"
    code, out = await command(tg, api, tmp_path, new_db, "restore", str(copy))
    assert code == 0, out
    assert sorted(waiting_jobs(new_db)) == sorted(saved)

    api.delay = 0
    async with bot_factory(database_url=f"sqlite:///{new_db}"):
        answered = lambda: all(TEXT in _texts(tg, chat_id) for chat_id, _ in saved)  # noqa: E731
        await tg.wait_for(answered, timeout=60)
    for chat_id, _ in saved:
        assert _texts(tg, chat_id).count(TEXT) == 1


def _texts(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [m.text or "" for m in tg.bot_messages(chat_id)]


async def test_restore_refuses_a_file_that_is_not_a_backup_and_changes_nothing(
    tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE jobs (chat_id, message_id, status)")
        conn.execute("INSERT INTO jobs VALUES (1, 2, 'queued')")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    code, out = await command(tg, api, tmp_path, db, "restore", str(junk))
    assert code == 1
    assert "restore failed" in out
    assert "not a Transcribot database" in out
    assert waiting_jobs(db) == [(1, 2)]


async def test_backup_of_a_missing_database_fails_and_names_it(
    tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    code, out = await command(tg, api, tmp_path, missing, "backup", str(tmp_path / "b"))
    assert code == 1
    assert f"{missing} does not exist" in out
    assert not (tmp_path / "b").exists()


async def test_restore_refuses_while_a_bot_runs_on_the_database(
    bot_process: ProcessFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    voice_bytes: bytes,
    tmp_path: Path,
) -> None:
    db, copy = tmp_path / "bot.sqlite3", tmp_path / "backup.sqlite3"
    bot = bot_process()
    await bot.start()
    code, out = await command(tg, api, tmp_path, db, "backup", str(copy))
    assert code == 0, out
    api.delay = 60  # a job the running bot is working on, which the backup does not have
    assert await bot.deliver(voice_message(tg, voice_bytes, chat_id=4242)) == 200
    await eventually(lambda: api.in_flight > 0, timeout=15)

    code, out = await command(tg, api, tmp_path, db, "restore", str(copy))
    assert code == 1, out
    assert "stop the bot" in out
    assert len(waiting_jobs(db)) == 1, "the running bot's database is left as it was"

    bot.signal(signal.SIGTERM)
    await bot.wait()
    code, out = await command(tg, api, tmp_path, db, "restore", str(copy))
    assert code == 0, out
    assert waiting_jobs(db) == []


async def test_a_backup_into_a_directory_is_a_new_dated_file_in_it(
    bot_process: ProcessFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = bot_process()
    await bot.start()
    made = tmp_path / "backups"
    made.mkdir()
    wanted = tmp_path / "new-dir"
    for target, directory in ((str(made), made), (f"{wanted}/", wanted)):
        code, out = await command(tg, api, tmp_path, db, "backup", target)
        assert code == 0, out
        [copy] = directory.iterdir()
        assert re.fullmatch(r"transcribot-\d{8}-\d{6}\.sqlite3", copy.name)
        assert f"backed up to {copy}:" in out
        assert waiting_jobs(copy) == []
    bot.signal(signal.SIGTERM)
    await bot.wait()
