"""The operator's commands beside the bot: `python -m bot check`, `backup PATH`, `restore PATH`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from bot.config import RedisLocation, Settings, database_location, describe_errors, load_settings
from bot.logs import Redactor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Transcribot.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "check", help="check the settings, Telegram, the API, ffmpeg and the database"
    )
    backup = commands.add_parser(
        "backup", help="copy the SQLite database to PATH, consistently, while the bot runs"
    )
    backup.add_argument("path", help="a file, or a directory to make a dated file in")
    restore = commands.add_parser(
        "restore", help="replace the SQLite database with the backup at PATH (bot stopped)"
    )
    restore.add_argument("path", type=Path)
    return parser


def run_command(argv: list[str]) -> int:
    """Run one command; its exit code."""
    args = _parser().parse_args(argv)
    if args.command == "check":
        return check()
    return copy(args.command, args.path)


def check() -> int:
    """One line per check on stdout; 0 when every one passed, 1 otherwise."""
    from bot.__main__ import secrets_of
    from bot.doctor import run_checks

    try:
        settings = load_settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            print(f"✗ settings: {line}: set it in the environment or .env (see .env.example)")
        return 1
    print(f"✓ settings: valid; {_mode(settings)}")
    redact = Redactor(secrets_of(settings))
    results = asyncio.run(run_checks(settings))
    for result in results:
        print(redact(result.line))
    sys.stdout.flush()
    return 0 if all(r.ok for r in results) else 1


def copy(command: str, path: str | Path) -> int:
    """backup or restore; one line on stdout (or stderr when it failed)."""
    from bot.backup import BackupError, backup, destination_for, restore

    try:
        settings = load_settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            print(f"config error: {line}", file=sys.stderr)
        return 2
    location = database_location(settings.database_url)
    if isinstance(location, RedisLocation):
        print(
            f"{command}: DATABASE_URL is Redis: back it up with Redis's own snapshots and AOF "
            "(see README, Backups)",
            file=sys.stderr,
        )
        return 2
    try:
        if command == "backup":
            summary = backup(location.path, destination_for(str(path), datetime.now(UTC)))
        else:
            summary = restore(Path(path), location.path)
    except BackupError as exc:
        print(f"{command} failed: {exc}", file=sys.stderr)
        return 1
    done = "backed up to" if command == "backup" else f"restored {path} into"
    print(f"{done} {summary.describe()}")
    return 0


def _mode(settings: Settings) -> str:
    if settings.webhook_url is None:
        return "polling mode"
    return f"webhook mode on {settings.webhook_path}"
