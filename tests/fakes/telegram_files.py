"""Files behind getFile and the download URL, in cloud or local (telegram-bot-api --local) mode."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from tests.fakes.telegram_models import FileInfo
from tests.fakes.telegram_rules import bad_request

MB = 1024 * 1024
CLOUD_DOWNLOAD_LIMIT = 20 * MB  # the cloud Bot API refuses getFile above this
LOCAL_DOWNLOAD_LIMIT = 2000 * MB  # a local Bot API server serves files up to 2000 MB


class FileStore:
    def __init__(self, local_mode_dir: Path | None) -> None:
        self.local_mode_dir = local_mode_dir.resolve() if local_mode_dir is not None else None
        self.by_id: dict[str, FileInfo] = {}
        self._data: dict[str, bytes] = {}  # by relative file_path, for the download route
        self._counter = itertools.count(1)

    def add(
        self,
        data: bytes,
        *,
        file_id: str | None = None,
        file_unique_id: str | None = None,
        file_path: str | None = None,
        file_size: int | None = None,
    ) -> FileInfo:
        n = next(self._counter)
        relative = file_path or f"voice/file_{n}.oga"
        path = relative
        if self.local_mode_dir is not None:
            local = self.local_mode_dir / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(data)
            path = str(local)
        info = FileInfo(
            file_id=file_id or f"AwACAgIAAx{n:06d}fake",
            # A forward of the same file keeps its file_unique_id: pass it to simulate one.
            file_unique_id=file_unique_id or f"AgADfake{n:06d}",
            file_path=path,
            file_size=len(data) if file_size is None else file_size,
        )
        self.by_id[info.file_id] = info
        self._data[relative] = data
        return info

    def get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self.by_id.get(str(params.get("file_id", "")))
        if info is None:
            raise bad_request("invalid file_id")
        limit = LOCAL_DOWNLOAD_LIMIT if self.local_mode_dir is not None else CLOUD_DOWNLOAD_LIMIT
        if info.file_size > limit:
            raise bad_request("file is too big")
        return {
            "file_id": info.file_id,
            "file_unique_id": info.file_unique_id,
            "file_size": info.file_size,
            "file_path": info.file_path,
        }

    def download(self, file_path: str) -> bytes | None:
        return self._data.get(file_path)
