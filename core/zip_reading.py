"""Reading an uploaded zip without trusting it: the one reader of dataset and model uploads.

A zip upload is opened with `open_zip`, which refuses, before any entry is read: a file whose
end record or central directory cannot be read (not a zip, truncated, corrupt), and more than
`max_entries` entries. The count is checked twice: against the count the end record declares,
before the central directory is parsed (so a zip claiming millions of entries allocates nothing),
and against the entries actually parsed (a zip whose end record understates its count is caught
by the directory's size first: `MAX_DIRECTORY_BYTES_PER_ENTRY`).

Before an entry is read, `check_entry` refuses an encrypted entry and one written with a
compression method outside the caller's list (`STANDARD_METHODS`: stored and deflate, what every
zip tool writes; `PYTHON_METHODS` adds bzip2 and LZMA, which Python's zipfile also reads). Its
bytes are then streamed by `read_entry`, which turns every error of the zip's data into a
`ZipProblem` naming the entry by its name inside the zip: a bad CRC-32, corrupt compressed data
(zlib, bzip2, LZMA errors), data cut off (EOFError), an unsupported method (NotImplementedError),
encryption (RuntimeError), a local header that disagrees with the directory (BadZipFile). It also
stops an entry at `max_bytes` (`too_large`). zipfile itself never returns more than an entry's
declared size (the CRC check then fails), so declared sizes bound what is read, and a caller
checks their sum first (`declared_bytes`).

Messages are sentences without a trailing period, for the caller to wrap ("The archive was
refused: ...", "The upload is not a model ...: ..."); they name entries as the uploader named
them, never a path on the server. Torch-free: the gateway and the workers both use it.
"""

from __future__ import annotations

import lzma
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

CHUNK_BYTES = 1024 * 1024
# Every zip tool writes these; anything else is refused by default.
STANDARD_METHODS: dict[int, str] = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
# What Python's zipfile can decompress (bz2 and lzma are always built into this Python).
PYTHON_METHODS: dict[int, str] = {
    **STANDARD_METHODS,
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "LZMA",
}
# A central directory entry is 46 bytes plus its name, extra field and comment. A directory larger
# than `max_entries` entries of this many bytes each is refused before it is parsed.
MAX_DIRECTORY_BYTES_PER_ENTRY = 46 + 4096
_ENCRYPTED = 0x1

# Errors that reading a zip's structure or an entry's data can raise for bad bytes.
_OPEN_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    NotImplementedError,
    ValueError,  # also UnicodeDecodeError (an entry name that is not UTF-8)
    struct.error,
    OSError,  # a seek before the file's start (a directory offset that lies)
)


class ZipProblem(ValueError):
    """A zip that cannot be read as it is; `too_large` when what it holds is over a limit."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def _name(info: zipfile.ZipInfo) -> str:
    return repr(info.filename)


def _declared_directory(file: IO[bytes]) -> tuple[int, int] | None:
    """(entries, central directory bytes) as the zip's end record declares them (the one that
    zipfile itself will read), None when there is no end record."""
    record = zipfile._EndRecData(file)  # the end record zipfile reads (zip64 aware)
    if not record:
        return None
    return int(record[zipfile._ECD_ENTRIES_TOTAL]), int(record[zipfile._ECD_SIZE])


def _check_count(file: IO[bytes], max_entries: int) -> None:
    declared = _declared_directory(file)
    file.seek(0)
    if declared is None:
        return  # zipfile says why it is no zip
    entries, directory_bytes = declared
    if entries > max_entries:
        raise ZipProblem(f"the zip has {entries} entries, more than the limit of {max_entries}")
    if directory_bytes > max(entries, 1) * MAX_DIRECTORY_BYTES_PER_ENTRY:
        raise ZipProblem(
            f"the zip's directory ({directory_bytes} bytes) is larger than its "
            f"{entries} entries can be: it is corrupt"
        )


@contextmanager
def open_zip(source: Path | IO[bytes], *, max_entries: int) -> Iterator[zipfile.ZipFile]:
    """The zip `source` (a path, or a seekable file read from its start), its directory read
    and its entries counted; ZipProblem when it is no readable zip or has over `max_entries`.

    A file passed in is rewound and left open; a path is opened and closed here. A missing path
    is the server's problem, not the upload's: its OSError is not caught."""
    with source.open("rb") if isinstance(source, Path) else _rewound(source) as file:
        try:
            _check_count(file, max_entries)
            archive = zipfile.ZipFile(file)
        except ZipProblem:
            raise
        except _OPEN_ERRORS as exc:
            raise ZipProblem(_open_reason(file, exc)) from None
        with archive:
            count = len(archive.infolist())
            if count > max_entries:
                raise ZipProblem(
                    f"the zip has {count} entries, more than the limit of {max_entries}"
                )
            yield archive


@contextmanager
def _rewound(file: IO[bytes]) -> Iterator[IO[bytes]]:
    file.seek(0)
    try:
        yield file
    finally:
        file.seek(0)


def _open_reason(file: IO[bytes], exc: BaseException) -> str:
    file.seek(0)
    if file.read(4) == b"PK\x03\x04":
        return f"the zip is truncated or corrupt: its directory cannot be read ({_detail(exc)})"
    return "it is not a valid zip file"


def _detail(exc: BaseException) -> str:
    """What went wrong, without file names (an OSError's text names its file)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).strip() or type(exc).__name__


def check_entry(info: zipfile.ZipInfo, methods: dict[int, str] = STANDARD_METHODS) -> None:
    """ZipProblem when the entry is encrypted or compressed with a method not in `methods`."""
    if info.flag_bits & _ENCRYPTED:
        raise ZipProblem(f"the entry {_name(info)} is encrypted; zip it without a password")
    if info.compress_type not in methods:
        known = zipfile.compressor_names.get(info.compress_type)
        method = f"the method {known!r}" if known else f"an unknown method ({info.compress_type})"
        raise ZipProblem(
            f"the entry {_name(info)} is compressed with {method}; ganserve reads "
            f"{_either(list(methods.values()))} entries"
        )


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def declared_bytes(infos: Iterable[zipfile.ZipInfo], max_bytes: int) -> int:
    """The sum of the entries' declared sizes; ZipProblem (`too_large`) over `max_bytes`."""
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise ZipProblem(
            f"its files unpack to {total} bytes, more than the limit of {max_bytes}",
            too_large=True,
        )
    return total


def _data_reason(info: zipfile.ZipInfo, exc: BaseException) -> str:
    name = _name(info)
    if isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc):
        return f"the entry {name} is corrupt: its data does not match its CRC-32 checksum"
    if isinstance(exc, zlib.error | lzma.LZMAError | OSError):
        return f"the entry {name} is corrupt: its compressed data cannot be read ({_detail(exc)})"
    if isinstance(exc, EOFError):
        return f"the entry {name} is cut off: the zip is truncated"
    if isinstance(exc, NotImplementedError):
        return f"the entry {name} uses a compression method that cannot be read"
    if isinstance(exc, RuntimeError):
        return f"the entry {name} is encrypted; zip it without a password"
    return f"the entry {name} cannot be read: {_detail(exc)}"


# What reading an entry's data raises for bad bytes: zipfile's own errors, the decompressors'.
_DATA_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,  # bz2: "Invalid data stream"
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)


def read_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    *,
    max_bytes: int | None = None,
    methods: dict[int, str] = STANDARD_METHODS,
) -> Iterator[bytes]:
    """The entry's bytes in chunks (checked with `check_entry` first; its CRC-32 is checked at
    its end). ZipProblem naming the entry when its data cannot be read, and (`too_large`) once
    it passes `max_bytes`."""
    check_entry(info, methods)
    size = 0
    try:
        with archive.open(info) as source:
            while True:
                try:
                    chunk = source.read(CHUNK_BYTES)
                except _DATA_ERRORS as exc:
                    raise ZipProblem(_data_reason(info, exc)) from None
                if not chunk:
                    return
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ZipProblem(
                        f"the entry {_name(info)} unpacks to more than the limit of "
                        f"{max_bytes} bytes",
                        too_large=True,
                    )
                yield chunk
    except ZipProblem:
        raise
    except _DATA_ERRORS as exc:  # opening the entry: its local header
        raise ZipProblem(_data_reason(info, exc)) from None


def read_whole_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    max_bytes: int,
    methods: dict[int, str] = STANDARD_METHODS,
) -> bytes:
    """An entry's bytes (`read_entry`), at most `max_bytes`."""
    return b"".join(read_entry(archive, info, max_bytes=max_bytes, methods=methods))


def verify_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, methods: dict[int, str] = STANDARD_METHODS
) -> None:
    """Read an entry to its end without keeping it: its data decompresses and its CRC-32 holds."""
    for _ in read_entry(archive, info, methods=methods):
        pass
