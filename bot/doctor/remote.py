"""The checks that ask a service: the Bot API (token, webhook) and the transcription API (key)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bot.config import Settings
from bot.doctor.result import Result, failed, passed

# How long a host may take to answer one request before its check fails.
ANSWER_SECONDS = 10.0
# A delivery error this recent, with updates waiting, means Telegram cannot deliver right now.
_RECENT_ERROR_SECONDS = 600


class _Unanswered(Exception):
    """No usable answer: the text says why (no secret in it)."""


async def _telegram(http: httpx.AsyncClient, settings: Settings, method: str, **params: int) -> Any:
    """The `result` of a Bot API call, or _Unanswered; TelegramRefused for ok=false."""
    token = settings.telegram_bot_token.get_secret_value()
    root = settings.api_root
    try:
        response = await http.get(f"{root}/bot{token}/{method}", params=params)
        body = response.json()
    except httpx.HTTPError as exc:
        raise _Unanswered(unreachable(root, exc)) from None
    except ValueError:
        raise _Unanswered(f"{root} answered {response.status_code}, not JSON") from None
    if not isinstance(body, dict):
        raise _Unanswered(f"{root} answered {response.status_code}, not the Bot API")
    if not body.get("ok"):
        raise TelegramRefused(int(body.get("error_code") or response.status_code), body)
    return body.get("result")


def unreachable(where: str, exc: httpx.HTTPError) -> str:
    """Why a request got no answer, without the request's URL (it can hold the token)."""
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return f"no answer within {ANSWER_SECONDS:.0f} s from {where}"
    return f"cannot reach {where} ({type(exc).__name__})"


class TelegramRefused(Exception):
    def __init__(self, code: int, body: dict[str, Any]) -> None:
        super().__init__(f"{code} {body.get('description', '')}".strip())
        self.code = code


async def check_telegram(http: httpx.AsyncClient, settings: Settings) -> Result:
    name = "telegram token"
    try:
        me = await _telegram(http, settings, "getMe")
    except _Unanswered as exc:
        return failed(name, f"{exc}: check TELEGRAM_API_URL and the network")
    except TelegramRefused as exc:
        if exc.code in (401, 404):
            return failed(
                name,
                f"Telegram refused TELEGRAM_BOT_TOKEN ({exc}): copy the token again from "
                "@BotFather (/mybots, API Token)",
            )
        return failed(name, f"getMe failed ({exc}): try again in a minute")
    privacy = "" if me.get("can_read_all_group_messages") else "; privacy mode on (see README)"
    return passed(name, f"@{me.get('username')} (id {me.get('id')}){privacy}")


async def check_webhook(http: httpx.AsyncClient, settings: Settings) -> Result:
    name = "webhook"
    try:
        info = await _telegram(http, settings, "getWebhookInfo")
    except (_Unanswered, TelegramRefused) as exc:
        return failed(name, f"getWebhookInfo failed ({exc}): try again in a minute")
    current = str(info.get("url") or "")
    pending = int(info.get("pending_update_count") or 0)
    if settings.webhook_url is None:
        if current:
            return failed(
                name,
                f"set to {current}, but this bot polls (no WEBHOOK_URL): another deployment in "
                "webhook mode may use this token; stop it, or set WEBHOOK_URL here too",
            )
        return passed(name, f"none set (polling mode); {pending} updates waiting")
    wanted = str(settings.webhook_url)
    if current != wanted:
        found = current or "not set"
        return failed(
            name,
            f"Telegram delivers to {found}, WEBHOOK_URL is {wanted}: start the bot (it calls "
            "setWebhook at start) and make sure no other deployment uses this token",
        )
    return _webhook_health(name, info, pending)


def _webhook_health(name: str, info: dict[str, Any], pending: int) -> Result:
    summary = f"{info.get('url')}; {pending} updates waiting"
    message = info.get("last_error_message")
    if not message:
        return passed(name, f"{summary}; no delivery error")
    age = time.time() - float(info.get("last_error_date") or 0)
    said = f"last delivery error {_ago(age)}: {message}"
    if age < _RECENT_ERROR_SECONDS and pending > 0:
        return failed(
            name,
            f"{summary}; {said}: Telegram cannot deliver; check that the reverse proxy "
            "forwards WEBHOOK_URL's path to LISTEN_PORT and that the bot is running",
        )
    return passed(name, f"{summary}; {said}")


async def check_admins(http: httpx.AsyncClient, settings: Settings) -> Result | None:
    """Whether each ADMIN_USER_IDS can get alerts: Telegram lets a bot write only to people
    who wrote to it first (getChat answers "chat not found" for the others). Never a ✗: the
    bot works without alerts, and the admin has to act, not the deployment."""
    name = "admins"
    admins = sorted(settings.admin_user_ids)
    if not admins:
        return None  # no line: nobody to check
    answers = await asyncio.gather(*(_reachable(http, settings, a) for a in admins))
    unknown = [str(a) for a, answer in zip(admins, answers, strict=True) if answer is None]
    never = [str(a) for a, answer in zip(admins, answers, strict=True) if answer is False]
    found = [str(len(admins))]
    if never:
        found.append(
            f"{', '.join(never)} never wrote to the bot, so Telegram lets it send them no "
            "alerts: each should open a private chat with the bot and send /start"
        )
    if unknown:
        found.append(f"not checked (getChat failed): {', '.join(unknown)}")
    if len(found) == 1:
        return passed(name, f"{found[0]}, each can be written to")
    return passed(name, "; ".join(found))


async def _reachable(http: httpx.AsyncClient, settings: Settings, admin: int) -> bool | None:
    """Whether the bot may write to this person; None when Telegram did not say."""
    try:
        await _telegram(http, settings, "getChat", chat_id=admin)
    except TelegramRefused as exc:
        return False if "chat not found" in str(exc).lower() else None
    except _Unanswered:
        return None
    return True


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


async def check_transcription_api(http: httpx.AsyncClient, settings: Settings) -> Result:
    """GET {base}/models: answers only with a valid key, and costs nothing."""
    name = "transcription API"
    url = f"{settings.openai_root}/models"
    headers = {"Authorization": f"Bearer {settings.openai_api_key.get_secret_value()}"}
    try:
        response = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return failed(name, f"{unreachable(url, exc)}: check OPENAI_BASE_URL")
    if response.status_code in (404, 405):
        return await _check_without_model_list(http, settings, url)
    refused = _refused(name, url, response)
    if refused is not None:
        return refused
    return passed(name, _models_summary(response, settings.default_model))


async def _check_without_model_list(
    http: httpx.AsyncClient, settings: Settings, models_url: str
) -> Result:
    """An engine with no GET /models (whisper.cpp's server): a transcription request without
    a file. It is refused as incomplete (or answered with an error), so nothing is
    transcribed or paid; the route and the key are checked all the same."""
    name = "transcription API"
    url = f"{settings.openai_root}/audio/transcriptions"
    headers = {"Authorization": f"Bearer {settings.openai_api_key.get_secret_value()}"}
    try:
        response = await http.post(
            url, headers=headers, files={"model": (None, settings.default_model)}
        )
    except httpx.HTTPError as exc:
        return failed(name, f"{unreachable(url, exc)}: check OPENAI_BASE_URL")
    if response.status_code in (200, 400, 415, 422):  # what a request without a file gets
        return passed(
            name,
            f"{url} answers (asked without audio: nothing paid); {models_url} lists no models",
        )
    refused = _refused(name, url, response)
    assert refused is not None
    return refused


def _refused(name: str, url: str, response: httpx.Response) -> Result | None:
    """The failed line for an answer that is not 200 (the key refused, or the wrong URL)."""
    if response.status_code in (401, 403):
        return failed(
            name,
            f"{url} refused OPENAI_API_KEY ({response.status_code}{_api_message(response)}): "
            "set a valid key from your provider",
        )
    if response.status_code != 200:
        return failed(
            name,
            f"{url} answered {response.status_code}{_api_message(response)}: check "
            "OPENAI_BASE_URL (an OpenAI-compatible base URL usually ends in /v1)",
        )
    return None


def _api_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
        message = error.get("message") if isinstance(error, dict) else None
    except (ValueError, AttributeError):
        return ""
    return f" {message}" if isinstance(message, str) and message else ""


def _models_summary(response: httpx.Response, default_model: str) -> str:
    try:
        data = response.json().get("data") or []
        ids = {str(item.get("id")) for item in data if isinstance(item, dict)}
    except (ValueError, AttributeError):
        return "the key is accepted"
    if default_model in ids:
        return f"the key is accepted; {len(ids)} models, {default_model} among them"
    return f"the key is accepted; {len(ids)} models, not {default_model} (a proxy may hide it)"
