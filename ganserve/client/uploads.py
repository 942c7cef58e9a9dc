"""Files the client sends: an `Upload` (bytes in memory, or a file read while it is sent) and
the zip of a dataset folder, written to a temporary file so that a large dataset never sits in
memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class Upload:
    """One file of a multipart request. A `Path` is opened afresh for each attempt (a retry
    sends it from its start) and streamed, never read whole."""

    filename: str
    content: bytes | Path
    content_type: str

    def open(self, stack: ExitStack) -> tuple[str, bytes | BinaryIO, str]:
        """The httpx `files` entry; an opened file is closed by `stack`."""
        content: bytes | BinaryIO = (
            self.content
            if isinstance(self.content, bytes)
            else (stack.enter_context(self.content.open("rb")))
        )
        return self.filename, content, self.content_type


def file_upload(path: str | os.PathLike[str], content_type: str) -> Upload:
    """An upload of the file at `path` (FileNotFoundError when there is none)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a file.")
    return Upload(path.name, path, content_type)


def _dataset_files(folder: Path) -> Iterator[Path]:
    """The files of a dataset folder, sorted, hidden ones (and those in hidden folders) left
    out."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            yield path


class DatasetArchive:
    """The zip to upload for a dataset: the given `.zip` itself, or a folder zipped into a
    temporary file by `build()` (images are stored, not compressed again) and removed by
    `remove()`. A context manager doing both."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.source = Path(source)
        self.path: Path | None = None
        self._temporary = False
        if not self.source.exists():
            raise FileNotFoundError(f"The dataset {str(self.source)!r} does not exist.")
        if self.source.is_file() and not zipfile.is_zipfile(self.source):
            raise ValueError(f"The dataset {str(self.source)!r} is neither a folder nor a zip.")

    def build(self) -> Path:
        """The path of the zip to send (zipping a folder the first time)."""
        if self.path is not None:
            return self.path
        if self.source.is_file():
            self.path = self.source
            return self.path
        fd, name = tempfile.mkstemp(prefix=f"{self.source.name}-", suffix=".zip")
        self.path, self._temporary = Path(name), True
        try:
            with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as out:
                for path in _dataset_files(self.source):
                    out.write(path, path.relative_to(self.source).as_posix())
        except BaseException:
            self.remove()
            raise
        return self.path

    def upload(self) -> Upload:
        """The zip as the `archive` field of `POST /v1/datasets`."""
        name = self.source.name if self.source.is_file() else f"{self.source.name}.zip"
        return Upload(name, self.build(), "application/zip")

    def remove(self) -> None:
        """Delete the temporary zip (never a zip the caller gave)."""
        if self._temporary and self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self.path, self._temporary = None, False

    def __enter__(self) -> DatasetArchive:
        self.build()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
