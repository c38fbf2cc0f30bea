"""/language, /prompt, /quiet, /names and /settings: what a person or a group chooses."""

from __future__ import annotations

from typing import Any

from telegram import Message, Update
from telegram.ext import BaseHandler, CommandHandler

from bot import policy, texts
from bot.handlers.common import (
    command_message,
    in_group,
    is_chat_admin,
    settings_here,
    user_id_of,
)
from bot.replies import escape
from bot.services import Context, Services
from bot.store import PrefValue, Scope


async def _scope_for_change(
    message: Message, context: Context, *, chat_only: bool = False
) -> tuple[Scope, int] | None:
    """Where a change goes: the group (its admins only) or the person; None after a refusal."""
    user_id = user_id_of(message) or 0
    if in_group(message):
        if not await is_chat_admin(context, message.chat_id, user_id):
            await message.reply_text(texts.group_admins_only())
            return None
        return "chat", message.chat_id
    if chat_only:
        return "chat", message.chat_id  # a private chat's id is the person's
    return "user", user_id


async def _effective(svc: Services, message: Message) -> policy.Effective:
    return await settings_here(svc, message)


def _argument(context: Context) -> str:
    return " ".join(context.args or []).strip()


async def _set(
    message: Message,
    context: Context,
    svc: Services,
    name: str,
    value: PrefValue,
    *,
    chat_only: bool = False,
) -> bool:
    target = await _scope_for_change(message, context, chat_only=chat_only)
    if target is None:
        return False
    await svc.store.set_pref(target[0], target[1], name, value)
    return True


async def language(update: Update, context: Context) -> None:
    found = command_message(update, context)
    if found is None:
        return
    message, svc = found
    group = in_group(message)
    code = _argument(context).lower()
    if not code:
        current = (await _effective(svc, message)).language.value
        state = texts.language_state(current if isinstance(current, str) else None, group)
        await message.reply_text(state + "\n" + texts.language_usage())
        return
    value = None if code in ("auto", "off") else code
    if value is not None and value not in policy.LANGUAGE_HINTS:
        await message.reply_text(texts.language_unknown(escape(code[:20])))
        return
    if await _set(message, context, svc, "language", value):
        await message.reply_text(texts.language_state(value, group))


async def prompt(update: Update, context: Context) -> None:
    found = command_message(update, context)
    if found is None:
        return
    message, svc = found
    group = in_group(message)
    limit = policy.PROMPT_MAX_CHARS
    hint = _argument(context)
    if not hint:
        current = (await _effective(svc, message)).prompt.value
        shown = escape(current) if isinstance(current, str) else None
        await message.reply_text(
            texts.prompt_state(shown, group) + "\n" + texts.prompt_usage(limit)
        )
        return
    if len(hint) > limit:
        await message.reply_text(texts.prompt_too_long(limit))
        return
    value = None if hint.lower() == "off" else hint
    if await _set(message, context, svc, "prompt", value):
        shown = escape(value) if value is not None else None
        await message.reply_text(texts.prompt_state(shown, group))


async def _switch(
    update: Update,
    context: Context,
    name: str,
    state: Any,
    usage: Any,
    *,
    groups_only: bool = False,
) -> None:
    """/quiet and /names: on|off for the chat; alone, the current state."""
    found = command_message(update, context)
    if found is None:
        return
    message, svc = found
    if groups_only and not in_group(message):
        await message.reply_text(texts.groups_only())
        return
    word = _argument(context).lower()
    if word not in ("on", "off"):
        current = getattr(await _effective(svc, message), name).value
        await message.reply_text(state(bool(current)) + "\n" + usage())
        return
    enabled = word == "on"
    if await _set(message, context, svc, name, enabled, chat_only=True):
        await message.reply_text(state(enabled))


async def quiet(update: Update, context: Context) -> None:
    await _switch(update, context, "quiet", texts.quiet_state, texts.quiet_usage)


async def names(update: Update, context: Context) -> None:
    await _switch(
        update, context, "sender_names", texts.names_state, texts.names_usage, groups_only=True
    )


async def settings(update: Update, context: Context) -> None:
    found = command_message(update, context)
    if found is None:
        return
    message, svc = found
    now = await _effective(svc, message)
    names = ["model", "language", "prompt", "quiet"]
    if in_group(message):
        names += ["auto_transcribe", "sender_names"]
    rows = []
    for name in names:
        choice: policy.Choice = getattr(now, name)
        rows.append((texts.setting_label(name), _shown(choice.value, name), choice.source))
    await message.reply_text(
        texts.settings_overview(
            [(w, v, texts.source_label(s)) for w, v, s in rows], in_group(message)
        )
    )


def _shown(value: PrefValue, name: str) -> str:
    if isinstance(value, bool):
        return texts.on_off(value)
    if value is None:
        return texts.auto_detect() if name == "language" else texts.none_set()
    return escape(value)


def handlers() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CommandHandler("language", language, block=False),
        CommandHandler("prompt", prompt, block=False),
        CommandHandler("quiet", quiet, block=False),
        CommandHandler("names", names, block=False),
        CommandHandler("settings", settings, block=False),
    ]
