"""Probe, extract, convert and split audio with ffmpeg so the transcription API accepts it.

probing.py reads what a file is, prepare.py makes the files to upload, parts.py cuts long ones.
"""

from __future__ import annotations

from bot.audio.parts import AudioPart, plan_cuts
from bot.audio.prepare import MAX_PART_SECONDS, MAX_UPLOAD_BYTES, PREPARE_TIMEOUT, prepare_parts
from bot.audio.probing import (
    PROBE_TIMEOUT,
    AudioInfo,
    api_upload_name,
    check_duration,
    ffmpeg_available,
    measure,
    probe,
)

__all__ = [
    "MAX_PART_SECONDS",
    "MAX_UPLOAD_BYTES",
    "PREPARE_TIMEOUT",
    "PROBE_TIMEOUT",
    "AudioInfo",
    "AudioPart",
    "api_upload_name",
    "check_duration",
    "ffmpeg_available",
    "measure",
    "plan_cuts",
    "prepare_parts",
    "probe",
]
