"""The bot's command menus: setMyCommands, getMyCommands, deleteMyCommands."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.telegram_rules import bad_request

_COMMAND = re.compile(r"[a-z0-9_]{1,32}")  # lowercase letters, digits and underscores


def scope_key(scope: dict[str, Any] | None, language_code: str = "") -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code


def _key_of(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope")
    return scope_key(scope if isinstance(scope, dict) else None, params.get("language_code") or "")


class BotCommands:
    def __init__(self) -> None:
        self.menus: dict[tuple[str, str], list[dict[str, str]]] = {}  # by scope_key()

    def set(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand JSON object")
            if not _COMMAND.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            description = command.get("description")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.menus[_key_of(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def get(self, params: dict[str, Any]) -> list[dict[str, str]]:
        return self.menus.get(_key_of(params), [])

    def delete(self, params: dict[str, Any]) -> bool:
        self.menus.pop(_key_of(params), None)
        return True
