"""Recordings from links: fetched like files, only from the public internet, within bounds.

The files are served by a local web server (tests.fakes.file_server). It is on 127.0.0.1, a
private address: the tests that fetch from it allow it (LINK_ALLOW_PRIVATE_NETWORKS, or
LINK_ALLOWED_NETWORKS=127.0.0.1/32 so that every other private address stays refused).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.conftest import BotFactory, RunningBot, next_message_id, next_update_id
from tests.fakes import FakeTelegram, FakeTranscriptionAPI, text_update
from tests.fakes.file_server import FakeFileServer
from tests.media_fixtures import MediaLibrary, needs_media_tools

pytestmark = needs_media_tools

USER = 5151
GROUP = -100777
ALLOW_ALL = {"link_allow_private_networks": True}
ALLOW_SERVER_ONLY = {"link_allowed_networks": "127.0.0.1/32"}


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    return MediaLibrary(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def files() -> AsyncIterator[FakeFileServer]:
    async with FakeFileServer() as server:
        yield server


class FixedResolver(AbstractResolver):
    """DNS as a test wants it: each name resolves to the addresses given, nothing else."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: no such name")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        pass


async def send_text(
    bot: RunningBot,
    tg: FakeTelegram,
    text: str,
    *,
    chat_id: int = USER,
    user_id: int = USER,
    chat_type: str = "private",
    reply_to: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Deliver a text message; the message (to reply to it)."""
    message_id = next_message_id()
    tg.add_message(chat_id, message_id, text=text)
    update = text_update(
        next_update_id(),
        chat_id=chat_id,
        user_id=user_id,
        message_id=message_id,
        text=text,
        chat_type=chat_type,
        reply_to=reply_to,
    )
    assert (await bot.deliver(update)).status_code == 200
    message: dict[str, Any] = update["message"]
    return message


async def answer(tg: FakeTelegram, message_id: int, chat_id: int = USER) -> str:
    """The bot's last word on a message (progress notes start with 🎙)."""

    def final() -> str | None:
        found = [m for m in tg.bot_messages(chat_id) if m.reply_to == message_id]
        text = found[-1].text if found else None
        return text if text and not text.startswith("🎙") else None

    await tg.wait_for(lambda: final() is not None, 15)
    text = final()
    assert text is not None
    return text


async def refused(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, url: str, words: str
) -> None:
    """A private-chat link is answered with a message containing `words`, and nothing paid."""
    message = await send_text(bot, tg, f"please transcribe {url}")
    text = await answer(tg, message["message_id"])
    assert words in text, text
    assert api.requests == []


# --- transcribed -----------------------------------------------------------------------------


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
async def test_link_in_a_private_chat_is_transcribed_like_a_file(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
    length: bool,
) -> None:
    data = media.audio("mp3").read_bytes()
    api.set_transcript(data, "the words behind the link")
    url = files.put("/talks/episode.mp3", data, length=length)

    async with bot_factory(**ALLOW_ALL) as bot:
        message = await send_text(bot, tg, f"here: {url}.")
        assert await answer(tg, message["message_id"]) == "the words behind the link"

    assert [r.path for r in files.requests] == ["/talks/episode.mp3"]
    assert len(api.requests) == 1


async def test_a_links_transcript_is_not_handed_to_another_chat_from_the_cache(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    # Unlike a Telegram file id, a link may stop working (a share revoked, a signed URL that
    # expired): whoever sends it later must fetch it themselves, not read someone's transcript.
    data = media.audio("mp3").read_bytes()
    api.set_transcript(data, "what the owner shared for a while")
    url = files.put("/share/a1b2c3/memo.mp3", data)
    async with bot_factory(**ALLOW_ALL) as bot:
        first = await send_text(bot, tg, url)
        assert await answer(tg, first["message_id"]) == "what the owner shared for a while"
        files.remove("/share/a1b2c3/memo.mp3")

        other = USER + 1
        later = await send_text(bot, tg, url, chat_id=other, user_id=other)
        text = await answer(tg, later["message_id"], chat_id=other)

    assert "what the owner shared" not in text
    assert len(api.requests) == 1


async def test_link_in_a_group_is_transcribed_only_when_asked_with_transcribe(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    data = media.audio("mp3").read_bytes()
    api.set_transcript(data, "asked for in the group")
    talk = files.put("/talk.mp3", data)
    chatter = files.put("/chatter.mp3", data)

    async with bot_factory(**ALLOW_ALL) as bot:
        await send_text(bot, tg, f"look {chatter}", chat_id=GROUP, chat_type="group")
        shared = await send_text(bot, tg, talk, chat_id=GROUP, chat_type="group")
        await send_text(bot, tg, "/transcribe", chat_id=GROUP, chat_type="group", reply_to=shared)
        text = await answer(tg, shared["message_id"], GROUP)

    assert text.endswith("\nasked for in the group")  # after the sender's name
    assert [r.path for r in files.requests] == ["/talk.mp3"]
    assert len(api.requests) == 1


async def test_connection_goes_to_the_address_the_resolver_gave(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    """No second lookup: a name nobody's DNS knows is fetched from the address checked."""
    data = media.audio("mp3").read_bytes()
    files.put("/named.mp3", data)
    resolver = FixedResolver({"media.example": ["127.0.0.1"]})

    async with bot_factory(link_resolver=resolver, **ALLOW_SERVER_ONLY) as bot:
        message = await send_text(bot, tg, files.url("/named.mp3", host="media.example"))
        assert await answer(tg, message["message_id"]) == api.transcript_for(data)

    assert resolver.asked == ["media.example"]
    assert files.requests[0].host == f"media.example:{files.port}"


async def test_redirects_are_followed_up_to_three(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    data = media.audio("mp3").read_bytes()
    files.put("/final.mp3", data)
    files.redirect("/r3", "/final.mp3")
    files.redirect("/r2", files.url("/r3"), status=301)
    files.redirect("/r1", "/r2", status=307)
    files.redirect("/r0", "/r1")

    async with bot_factory(**ALLOW_SERVER_ONLY) as bot:
        good = await send_text(bot, tg, files.url("/r1"))
        assert await answer(tg, good["message_id"]) == api.transcript_for(data)
        too_many = await send_text(bot, tg, files.url("/r0"))
        assert "couldn't download" in await answer(tg, too_many["message_id"])

    assert len(api.requests) == 1


# --- refused, and nothing paid ----------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.2",
        "localhost",  # the system's resolver: /etc/hosts
        "[::1]",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "10.0.0.1",
        "192.168.1.20",
        "172.16.5.4",
        "100.64.0.1",
        "169.254.169.254",
        "[fe80::1]",
        "[fc00::1]",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
async def test_link_to_a_private_address_is_refused(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
    host: str,
) -> None:
    files.put("/secret.mp3", media.audio("mp3").read_bytes())
    async with bot_factory() as bot:
        await refused(bot, tg, api, files.url("/secret.mp3", host=host), "private network")
    assert files.requests == []


@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/secret.mp3", "http://[::1]:{port}/x"])
async def test_redirect_to_a_private_address_is_refused(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
    target: str,
) -> None:
    files.put("/secret.mp3", media.audio("mp3").read_bytes())
    url = files.redirect("/moved", target.format(port=files.port))
    async with bot_factory(**ALLOW_SERVER_ONLY) as bot:
        await refused(bot, tg, api, url, "private network")
    assert [r.path for r in files.requests] == ["/moved"]


async def test_redirect_to_another_scheme_is_refused(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, files: FakeFileServer
) -> None:
    url = files.redirect("/moved", "file:///etc/passwd")
    async with bot_factory(**ALLOW_SERVER_ONLY) as bot:
        await refused(bot, tg, api, url, "http:// and https://")


@pytest.mark.parametrize(
    "addresses", [["10.0.0.7"], ["93.184.216.34", "10.0.0.7"], ["::1"], ["::ffff:10.0.0.7"]]
)
async def test_a_name_resolving_to_any_private_address_is_refused(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    addresses: list[str],
) -> None:
    resolver = FixedResolver({"files.example.com": addresses})
    async with bot_factory(link_resolver=resolver) as bot:
        await refused(bot, tg, api, "https://files.example.com/talk.mp3", "private network")
    assert resolver.asked == ["files.example.com"]


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
async def test_oversized_file_is_refused_by_counting_bytes(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    length: bool,
) -> None:
    url = files.put("/big.mp3", b"\xff\xfb" * (1024 * 1024 + 1), length=length)
    async with bot_factory(link_max_mb=2, **ALLOW_ALL) as bot:
        await refused(bot, tg, api, url, "too big: I take up to 2 MB")


async def test_server_that_stops_sending_is_given_up(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, files: FakeFileServer
) -> None:
    url = files.stall("/stuck.mp3", first=b"\xff\xfb\x90\x00", seconds=30)
    async with bot_factory(link_idle_seconds=0.5, **ALLOW_ALL) as bot:
        await refused(bot, tg, api, url, "too slow")


async def test_server_that_trickles_is_given_up_at_the_total_limit(
    bot_factory: BotFactory, tg: FakeTelegram, api: FakeTranscriptionAPI, files: FakeFileServer
) -> None:
    url = files.trickle("/drip.mp3", b"\xff" * 100, every=0.2, times=100)
    async with bot_factory(link_timeout_seconds=1.5, **ALLOW_ALL) as bot:
        await refused(bot, tg, api, url, "too slow")


def drive_page(action: str) -> bytes:
    """Google Drive's answer for a file too large for its virus scan, as it is made (2024)."""
    return (
        "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>"
        '<body><div class="uc-main"><p class="uc-warning-subcaption">Google Drive can\'t scan '
        "this file for viruses.</p>"
        f'<form id="download-form" action="{action}" method="get">'
        '<input type="submit" id="uc-download-link" class="goog-inline-block" '
        'value="Download anyway"/>'
        '<input type="hidden" name="id" value="1AbC_d-9xYz">'
        '<input type="hidden" name="export" value="download">'
        '<input type="hidden" name="confirm" value="t">'
        '<input type="hidden" name="uuid" value="6a1f0d4e-2b3c">'
        "</form></div></body></html>"
    ).encode()


DRIVE = "drive.usercontent.google.com"


async def test_google_drive_s_page_for_a_large_file_is_followed_to_the_file(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    data = media.audio("mp3").read_bytes()
    files.put("/file", data)
    files.put("/download", drive_page(files.url("/file", host=DRIVE)), "text/html")
    resolver = FixedResolver({DRIVE: ["127.0.0.1"]})

    async with bot_factory(link_resolver=resolver, **ALLOW_SERVER_ONLY) as bot:
        link = files.url("/download", host=DRIVE) + "?id=1AbC_d-9xYz&export=download"
        message = await send_text(bot, tg, link)
        assert await answer(tg, message["message_id"]) == api.transcript_for(data)

    assert [r.path for r in files.requests] == ["/download", "/file"]
    assert files.requests[1].query == "id=1AbC_d-9xYz&export=download&confirm=t&uuid=6a1f0d4e-2b3c"


@pytest.mark.parametrize(
    ("host", "action"),
    [
        (DRIVE, "http://elsewhere.example/file"),  # a form that leads off Google Drive
        (DRIVE, None),  # a Drive page with no download form (a sign-in page, say)
        ("media.example", "/file"),  # the same page from any other host
    ],
    ids=["off-drive", "no-form", "not-drive"],
)
async def test_other_pages_from_a_link_are_refused(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
    host: str,
    action: str | None,
) -> None:
    files.put("/file", media.audio("mp3").read_bytes())
    page = b"<html><body>Sign in</body></html>" if action is None else drive_page(action)
    files.put("/download", page, "text/html")
    resolver = FixedResolver({host: ["127.0.0.1"], "elsewhere.example": ["127.0.0.1"]})
    async with bot_factory(link_resolver=resolver, **ALLOW_SERVER_ONLY) as bot:
        await refused(bot, tg, api, files.url("/download", host=host), "not to an audio or video")
    assert [r.path for r in files.requests] == ["/download"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html"),
        (b"  <html><head><title>Download</title></head></html>", "application/octet-stream"),
        (b"just some text, nothing to hear " * 100, "audio/mpeg"),
    ],
    ids=["html", "html-as-octet-stream", "not-media"],
)
async def test_link_to_something_that_is_not_a_recording_is_refused(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    body: bytes,
    content_type: str,
) -> None:
    url = files.put("/page", body, content_type)
    async with bot_factory(**ALLOW_ALL) as bot:
        await refused(bot, tg, api, url, "not to an audio or video file")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/talk.mp3", "file:///etc/passwd"])
async def test_link_with_another_scheme_is_refused(
    bot: RunningBot, tg: FakeTelegram, api: FakeTranscriptionAPI, url: str
) -> None:
    await refused(bot, tg, api, url, "http:// and https://")


async def test_link_from_someone_not_allowed_is_not_fetched(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    url = files.put("/talk.mp3", media.audio("mp3").read_bytes())
    async with bot_factory(allowed_user_ids="1", **ALLOW_ALL) as bot:
        await refused(bot, tg, api, url, "")
    assert files.requests == []


async def test_link_longer_than_the_audio_limit_is_refused_before_paying(
    bot_factory: BotFactory,
    tg: FakeTelegram,
    api: FakeTranscriptionAPI,
    files: FakeFileServer,
    media: MediaLibrary,
) -> None:
    url = files.put("/long.wav", media.tone_wav(5).read_bytes(), "audio/wav")
    async with bot_factory(max_audio_seconds=2, **ALLOW_ALL) as bot:
        await refused(bot, tg, api, url, "too long")
