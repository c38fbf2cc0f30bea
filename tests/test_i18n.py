"""Replies in the user's Telegram language (English, Vietnamese, Russian; English for the rest),
from gettext catalogues that hold every text of the code, translated, placeholders and tags kept.
"""

from __future__ import annotations

import asyncio
import re
import string
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot import i18n, texts
from bot.callbacks import Callbacks
from tests.conftest import BotFactory, RunningBot, next_message_id, next_update_id, send_voice
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, callback_update, text_update

BOT_DIR = Path(i18n.__file__).parent
TRANSLATED = [language for language in i18n.LANGUAGES if language != i18n.SOURCE_LANGUAGE]

MessageId = str | tuple[str, ...]


def code_messages() -> set[MessageId]:
    """What `make messages` extracts: Babel's default mapping and keywords over bot/."""
    found: set[MessageId] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(BOT_DIR)):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def read_catalogue(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=language)


def entries(catalogue: Catalog) -> list[Message]:
    return [m for m in catalogue if m.id]  # without the header


def key(message: Message) -> MessageId:
    return message.id if isinstance(message.id, str) else tuple(message.id)


def translations(message: Message) -> list[str]:
    forms = message.string
    return [forms] if isinstance(forms, str) else list(forms or ())


def originals(message: Message) -> list[str]:
    return [message.id] if isinstance(message.id, str) else list(message.id)


def placeholders(text: str) -> set[tuple[str, str | None, str | None]]:
    """The {fields} of a str.format template; ValueError when its braces are malformed."""
    return {
        (name, conversion, spec)
        for _, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    }


_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>")


def tags(text: str) -> Counter[str]:
    return Counter(closing + name.lower() for closing, name in _TAG.findall(text))


def tags_balance(text: str) -> bool:
    open_tags: list[str] = []
    for closing, name in _TAG.findall(text):
        if not closing:
            open_tags.append(name.lower())
        elif not open_tags or open_tags.pop() != name.lower():
            return False
    return not open_tags


# The catalogues


def test_every_language_but_english_has_a_catalogue_and_no_other_does() -> None:
    on_disk = {path.parent.parent.name for path in i18n.LOCALES.glob("*/LC_MESSAGES/*.po")}
    assert on_disk == set(TRANSLATED)


def test_the_template_is_up_to_date_with_the_code() -> None:
    template = read_catalogue(i18n.LOCALES / "messages.pot")
    assert {key(m) for m in entries(template)} == code_messages(), "run `make messages`"


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalogue_has_every_text_of_the_code_and_no_other(language: str) -> None:
    catalogue = read_catalogue(i18n.catalogue_path(language), language)
    assert {key(m) for m in entries(catalogue)} == code_messages(), "run `make messages`"


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalogue_translates_everything_with_nothing_fuzzy(language: str) -> None:
    catalogue = read_catalogue(i18n.catalogue_path(language), language)
    for message in entries(catalogue):
        assert not message.fuzzy, f"{language}: fuzzy: {message.id!r}"
        forms = translations(message)
        if message.pluralizable:
            assert len(forms) == catalogue.num_plurals, f"{language}: {message.id!r}"
        assert all(form.strip() for form in forms), f"{language}: untranslated: {message.id!r}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders(language: str) -> None:
    catalogue = read_catalogue(i18n.catalogue_path(language), language)
    for message in entries(catalogue):
        singular, *plural = originals(message)
        wanted = placeholders(singular)
        assert all(placeholders(text) == wanted for text in plural), f"{message.id!r}"
        for form in translations(message):
            assert placeholders(form) == wanted, f"{language}: {form!r}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_html_tags(language: str) -> None:
    catalogue = read_catalogue(i18n.catalogue_path(language), language)
    for message in entries(catalogue):
        wanted = tags(originals(message)[0])
        for form in translations(message):
            assert tags(form) == wanted, f"{language}: {form!r}"
            assert tags_balance(form), f"{language}: {form!r}"


# Choosing the language


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("en", "en"),
        ("vi", "vi"),
        ("vi-VN", "vi"),
        ("ru", "ru"),
        ("RU_ru", "ru"),
        ("pt-br", "en"),
        ("de", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_telegram_language_code_chooses_the_language(code: str | None, language: str) -> None:
    assert i18n.language_for(code) == language


def test_use_language_applies_inside_the_block_only() -> None:
    with i18n.use_language("ru"):
        assert texts.working() == "🎙 Расшифровываю…"
        with i18n.use_language("vi-VN"):
            assert texts.working() == "🎙 Đang chuyển thành văn bản…"
        assert i18n.current_language() == "ru"
    assert texts.working() == "🎙 Transcribing…"


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (1, "1 секунда"),
        (3, "3 секунды"),
        (11, "11 секунд"),
        (21, "21 секунда"),
        (120, "2 минуты"),
        (300, "5 минут"),
        (3600, "1 час"),
        (4 * 3600, "4 часа"),
        (5400, "1 ч 30 мин"),
        (3725, "1 ч 2 мин 5 с"),
    ],
)
def test_durations_in_russian_take_the_right_plural(seconds: int, said: str) -> None:
    with i18n.use_language("ru"):
        assert texts.span(seconds) == said


def test_counts_in_russian_take_the_right_plural() -> None:
    with i18n.use_language("ru"):
        assert "1 минута аудио" in texts.quota_used(60, 3600)
        assert "(осталось: 1 час)" in texts.quota_used(60, 3600)


# Replies, over HTTP

USER = 4242


async def command(bot: RunningBot, tg: FakeTelegram, text: str, language: str, user: int) -> None:
    message_id = next_message_id()
    tg.add_message(user, message_id)
    update = text_update(
        next_update_id(),
        chat_id=user,
        user_id=user,
        message_id=message_id,
        text=text,
        language_code=language,
    )
    assert (await bot.deliver(update)).status_code == 200


async def test_vietnamese_user_gets_start_in_vietnamese(bot: RunningBot, tg: FakeTelegram) -> None:
    await command(bot, tg, "/start", "vi", USER)
    [reply] = await tg.wait_calls("sendMessage", 1)
    assert reply.params["text"].startswith("👋 Gửi cho mình tin nhắn thoại")
    assert "<b>gpt-4o-mini-transcribe</b>" in reply.params["text"]


async def test_user_of_another_language_gets_english(bot: RunningBot, tg: FakeTelegram) -> None:
    await command(bot, tg, "/start", "de", USER)
    [reply] = await tg.wait_calls("sendMessage", 1)
    assert reply.params["text"].startswith("👋 Send me a voice note")


async def test_users_answered_at_once_each_get_their_own_language(
    bot: RunningBot, tg: FakeTelegram
) -> None:
    users = {USER + n: language for n, language in enumerate(("ru", "en", "vi", "ru", "en"))}
    await asyncio.gather(*(command(bot, tg, "/help", lang, user) for user, lang in users.items()))
    await tg.wait_calls("sendMessage", len(users))
    first_words = {
        "ru": "Transcribot превращает",
        "en": "Transcribot turns",
        "vi": "Transcribot chuyển",
    }
    for user, language in users.items():
        [reply] = [m.text or "" for m in tg.bot_messages(user)]
        assert reply.startswith(first_words[language]), (language, reply)


async def test_russian_user_sees_the_transcription_flow_in_russian(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, voice_bytes: bytes
) -> None:
    api.set_transcript(voice_bytes, "")
    await send_voice(bot, tg, voice_bytes, chat_id=USER, language_code="ru")
    [placeholder] = await tg.wait_calls("sendMessage", 1)
    assert placeholder.params["text"] == "🎙 Расшифровываю…"
    [edit] = await tg.wait_calls("editMessageText", 1)
    assert edit.params["text"] == "🤷 Речь не распознана."


async def test_refusal_sent_after_the_webhook_answer_is_in_the_users_language(
    bot_factory: BotFactory, tg: FakeTelegram, voice_bytes: bytes
) -> None:
    async with bot_factory(allowed_user_ids="1") as bot:
        await send_voice(bot, tg, voice_bytes, chat_id=USER, language_code="ru")
        [refusal] = await tg.wait_calls("sendMessage", 1)
    assert refusal.params["text"] == "Извини, это закрытый бот. Попроси доступ у его владельца."


async def test_model_buttons_and_choice_are_in_the_users_language(
    bot: RunningBot, tg: FakeTelegram
) -> None:
    await command(bot, tg, "/model", "vi", USER)
    [prompt] = await tg.wait_calls("sendMessage", 1)
    assert prompt.params["text"].startswith("Chọn mô hình")
    labels = [row[0]["text"] for row in prompt.params["reply_markup"]["inline_keyboard"]]
    assert labels == [
        "✅ gpt-4o-mini-transcribe (nhanh, rẻ hơn)",
        "gpt-4o-transcribe (chính xác hơn)",
    ]
    await bot.deliver(
        callback_update(
            next_update_id(),
            chat_id=USER,
            user_id=USER,
            message_id=tg.last_message_id(USER),
            data=Callbacks.choose_model("gpt-4o-transcribe"),
            language_code="vi",
        )
    )
    [chosen] = await tg.wait_calls("editMessageText", 1)
    assert chosen.params["text"] == "✅ Mô hình của bạn: <b>gpt-4o-transcribe</b>"


async def test_command_menu_is_registered_in_each_language(
    bot: RunningBot, tg: FakeTelegram
) -> None:
    menus = {code: tg.commands_for(language_code=code) or [] for code in ("", "vi", "ru")}
    descriptions = {code: {c["command"]: c["description"] for c in m} for code, m in menus.items()}
    assert descriptions[""]["model"] == "Choose the transcription model"
    assert descriptions["vi"]["model"] == "Chọn mô hình chuyển giọng nói thành văn bản"
    assert descriptions["ru"]["model"] == "Выбрать модель распознавания"
    assert all(d.keys() == descriptions[""].keys() for d in descriptions.values())
