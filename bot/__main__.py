"""python -m bot: load settings, run until SIGTERM/SIGINT (other commands: bot/cli.py)."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from urllib.parse import quote

from pydantic import ValidationError

from bot.config import RedisLocation, Settings, database_location, describe_errors, load_settings
from bot.logs import setup_logging


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            print(f"config error: {line}", file=sys.stderr)
        print("Set these in the environment or in a .env file (see .env.example).", file=sys.stderr)
        raise SystemExit(2) from None


async def _serve(settings: Settings) -> None:
    from bot.app import BotService  # imported late: settings errors print without the weight
    from bot.tracking import setup_tracking

    # In the running loop: Sentry's asyncio integration hooks the loop's tasks.
    setup_tracking(settings, secrets_of(settings))

    # A full garbage collection walks every tracked object, and the ~85,000 of the imported
    # libraries made each one a ~50 ms stop of the event loop (webhook answers waited): frozen,
    # they are left out of every collection from now on.
    gc.collect()
    gc.freeze()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await BotService(settings).run(stop)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in the settings, as it could appear in a text (for scrubbing)."""
    secrets = [
        settings.telegram_bot_token.get_secret_value(),
        settings.openai_api_key.get_secret_value(),
    ]
    if settings.webhook_secret is not None:
        secrets.append(settings.webhook_secret.get_secret_value())
    if settings.metrics_token is not None:
        secrets.append(settings.metrics_token.get_secret_value())
    if settings.sentry_dsn is not None:
        secrets.append(settings.sentry_dsn.get_secret_value())
    database = database_location(settings.database_url)
    if isinstance(database, RedisLocation):
        for password in database.passwords:
            secrets += [password, quote(password, safe="")]
    return secrets


def main() -> None:
    command = sys.argv[1:]
    if command:
        from bot.cli import run_command

        raise SystemExit(run_command(command))
    settings = _settings_or_exit()
    redact = setup_logging(
        settings.log_level, secrets_of(settings), settings.log_format, settings.debug_loggers
    )
    from bot.app import Fatal, StartupError

    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(_serve(settings))
        else:
            uvloop.run(_serve(settings))
    except StartupError as exc:
        print(redact(f"startup error: {exc}"), file=sys.stderr)
        raise SystemExit(1) from None
    except Fatal as exc:
        print(redact(f"stopped: {exc}"), file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
