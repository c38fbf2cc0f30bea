"""Running ffmpeg and ffprobe on files a stranger sent: bounded in memory, output and time.

Each run gets an address-space limit (a crafted file cannot make a decoder take the machine's
memory), a CPU-time limit (a backstop to the callers' wall-clock timeouts), and what is read from
its pipes is capped: stderr keeps its last few KB, stdout is refused past a limit (the child is
killed). A run whose caller is cancelled or times out is killed and reaped before the
cancellation goes on.
"""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from bot.errors import CorruptAudio, FfmpegMissing

# ffmpeg maps its libraries and each thread's stack and malloc arena up front: ~250 MB of
# address space for a plain opus conversion, measured. 1 GiB leaves room for any decoder we
# use on a real file, and stops one that a crafted header would make allocate without end.
MEMORY_LIMIT_BYTES = 1024 * 1024 * 1024
CPU_LIMIT_SECONDS = 900  # the longest wall-clock bound a caller sets (bot.audio.PREPARE_TIMEOUT)
STDOUT_LIMIT = 64 * 1024  # ffprobe's few -show_entries, -progress lines: a few KB at most
_STDERR_TAIL = 4096
_LINE_BREAK = re.compile(rb"[\r\n]+")


class OutputTooLarge(CorruptAudio):
    """A child wrote more to stdout than we read from it (it was killed)."""


def url(path: Path) -> str:
    # "file:" keeps a name like "-x" or "concat:..." from being read as an option or protocol.
    return f"file:{path.resolve()}"


def _limit_child() -> None:
    """Runs in the child between fork and exec: only the C calls setrlimit needs."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_SECONDS, CPU_LIMIT_SECONDS + 5))


async def run(
    program: str,
    args: Sequence[str],
    *,
    capture: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> bytes:
    """Run ffmpeg or ffprobe; its stdout (capped) if capture. Killed if the caller gives up."""
    executable = shutil.which(program)
    if executable is None:
        raise FfmpegMissing(f"{program} is not installed")
    if program == "ffmpeg":
        args = ["-nostdin", "-hide_banner", *args]
    proc = await asyncio.create_subprocess_exec(
        executable,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_limit_child,
    )
    try:
        assert proc.stderr is not None
        out, tail = await asyncio.gather(_read_capped(proc.stdout), _drain(proc.stderr, on_line))
        returncode = await proc.wait()
    except BaseException:
        with suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if returncode != 0:
        raise CorruptAudio(f"{program} failed: {_without_paths(_last_line(tail), args)}")
    return out


def _without_paths(message: str, args: Sequence[str]) -> str:
    """ffmpeg's message with our files named by their names only.

    The message goes to the log and the job's record; a local Bot API server keeps files
    under a directory named after the bot's token.
    """
    for arg in args:
        if arg.startswith("file:"):
            message = message.replace(arg, Path(arg.removeprefix("file:")).name)
    return message


async def _read_capped(stream: asyncio.StreamReader | None) -> bytes:
    if stream is None:
        return b""
    out = await stream.read(STDOUT_LIMIT + 1)
    while len(out) <= STDOUT_LIMIT and (chunk := await stream.read(STDOUT_LIMIT + 1 - len(out))):
        out += chunk
    if len(out) > STDOUT_LIMIT:
        # run() kills the child when this propagates.
        raise OutputTooLarge(f"more than {STDOUT_LIMIT} bytes of output")
    return out


async def _drain(stream: asyncio.StreamReader, on_line: Callable[[str], None] | None) -> bytes:
    """Read stderr to the end, keeping only its last few KB, passing each line to on_line."""
    tail = b""
    pending = b""
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-_STDERR_TAIL:]
        if on_line is not None:
            *lines, pending = _LINE_BREAK.split(pending + chunk)
            pending = pending[-_STDERR_TAIL:]
            for line in lines:
                on_line(line.decode(errors="replace"))
    if on_line is not None and pending:
        on_line(pending.decode(errors="replace"))
    return tail


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1][-200:] if lines else "no error message"
