"""Malformed zips, built byte by byte: each case of `MALFORMED` breaks one thing of a model zip.

A model zip here is `m/config.json` + `m/model.safetensors` (`model_zip`); the cases change its
bytes the way a broken disk, a truncated download, an odd zip tool or a hostile uploader would.
Each maker takes the card's bytes and returns the zip's bytes.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

WEIGHTS = b"placeholder weights: not a safetensors file " * 20
WEIGHTS_NAME = "m/model.safetensors"
CARD_NAME = "m/config.json"
# (offsets of the fields in a local header, in a central directory header)
_FLAGS = (6, 8)
_METHOD = (8, 10)
_CRC = (14, 16)
_SIZE = (22, 24)  # uncompressed size


def valid_card(folder: Path) -> bytes:
    """A valid card (a pix2pix translator's config.json), written under `folder`."""
    from tests.service.factories import write_model_folder

    model = write_model_folder(
        folder, "m", architecture="pix2pix-generator", family="pix2pix", task="translate"
    )
    return (model / "config.json").read_bytes()


def model_zip(
    card: bytes,
    weights: bytes = WEIGHTS,
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A model folder zip `m/` whose weights entry is written with `compression`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(CARD_NAME, card, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr(WEIGHTS_NAME, weights, compress_type=compression)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _headers(data: bytes, name: str) -> tuple[int, int]:
    """The offsets of the local header and of the central directory header of entry `name`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
    encoded = name.encode()
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + length] == encoded:
            return info.header_offset, central
        central = data.find(b"PK\x01\x02", central + 4)
    raise AssertionError(f"no central header for {name}")


def _patch(data: bytes, name: str, field: tuple[int, int], fmt: str, value: int) -> bytes:
    """`data` with a field of entry `name` set to `value` in both of its headers."""
    out = bytearray(data)
    local, central = _headers(data, name)
    struct.pack_into(fmt, out, local + field[0], value)
    struct.pack_into(fmt, out, central + field[1], value)
    return bytes(out)


def bad_crc(card: bytes) -> bytes:
    """The weights' data changed after their CRC-32 was written (a flipped byte, stored)."""
    data = model_zip(card, compression=zipfile.ZIP_STORED)
    local, _ = _headers(data, WEIGHTS_NAME)
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_length + extra_length
    out = bytearray(data)
    out[start + 5] ^= 0xFF
    return bytes(out)


def corrupt_deflate(card: bytes) -> bytes:
    """The weights' deflate stream is garbage (zlib cannot decode it)."""
    data = model_zip(card, compression=zipfile.ZIP_DEFLATED)
    local, _ = _headers(data, WEIGHTS_NAME)
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_length + extra_length
    out = bytearray(data)
    out[start : start + 8] = b"\xff" * 8  # a reserved block type: "invalid block type"
    return bytes(out)


def corrupt_card(card: bytes) -> bytes:
    """config.json's deflate stream is garbage: the gateway's own read of the card fails."""
    data = model_zip(card)
    local, _ = _headers(data, CARD_NAME)
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_length + extra_length
    out = bytearray(data)
    out[start : start + 8] = b"\xff" * 8
    return bytes(out)


def lzma_member(card: bytes) -> bytes:
    """The weights compressed with LZMA (Python reads it; a model zip is stored or deflate)."""
    return model_zip(card, compression=zipfile.ZIP_LZMA)


def bzip2_member(card: bytes) -> bytes:
    """The weights compressed with bzip2."""
    return model_zip(card, compression=zipfile.ZIP_BZIP2)


def unknown_method(card: bytes) -> bytes:
    """The weights entry names compression method 99, which no reader knows."""
    return _patch(model_zip(card, compression=zipfile.ZIP_STORED), WEIGHTS_NAME, _METHOD, "<H", 99)


def unknown_method_card(card: bytes) -> bytes:
    """config.json names compression method 99 (the gateway reads the card first)."""
    return _patch(model_zip(card), CARD_NAME, _METHOD, "<H", 99)


def encrypted(card: bytes) -> bytes:
    """The weights entry has the 'encrypted' flag (bit 0) set."""
    data = model_zip(card, compression=zipfile.ZIP_STORED)
    local, _ = _headers(data, WEIGHTS_NAME)
    flags = struct.unpack_from("<H", data, local + _FLAGS[0])[0]
    return _patch(data, WEIGHTS_NAME, _FLAGS, "<H", flags | 0x1)


def too_many_entries(card: bytes, count: int = 1001) -> bytes:
    """A model folder plus enough empty files to pass `count` entries."""
    return model_zip(card, extra={f"m/extra/{i}.txt": b"" for i in range(count - 2)})


def truncated(card: bytes) -> bytes:
    """The first two thirds of a model zip (a cut-off download: no central directory)."""
    data = model_zip(card, compression=zipfile.ZIP_STORED)
    return data[: 2 * len(data) // 3]


def cut_data(card: bytes) -> bytes:
    """The directory intact, but the weights' entry declares 10 kB more (stored) data than the
    file holds: its data is cut off."""
    data = model_zip(card, compression=zipfile.ZIP_STORED)
    local, central = _headers(data, WEIGHTS_NAME)
    out = bytearray(data)
    size = struct.unpack_from("<I", data, central + 20)[0]
    for field_at in (local + 18, central + 20):  # compressed size: past the end of the data
        struct.pack_into("<I", out, field_at, size + 10_000)
    for field_at in (local + 22, central + 24):  # and uncompressed size with it
        struct.pack_into("<I", out, field_at, size + 10_000)
    return bytes(out)


def lying_size(card: bytes, real: int = 4_000_000, claimed: int = 100) -> bytes:
    """A zip bomb that declares `claimed` bytes of weights but inflates to `real`."""
    data = model_zip(card, b"\x00" * real, compression=zipfile.ZIP_DEFLATED)
    return _patch(data, WEIGHTS_NAME, _SIZE, "<I", claimed)


def declared_huge(card: bytes, claimed: int = 0xFFFF_FFF0) -> bytes:
    """A zip bomb's directory: the weights declare about 4 GiB."""
    return _patch(model_zip(card), WEIGHTS_NAME, _SIZE, "<I", claimed)


def deflate_bomb(card: bytes, size: int = 2_000_000) -> bytes:
    """An honest zip bomb: `size` zero bytes that deflate to a few kB."""
    return model_zip(card, b"\x00" * size, compression=zipfile.ZIP_DEFLATED)


# name: (maker, HTTP status, error code, a word the message holds)
MALFORMED: dict[str, tuple[Callable[[bytes], bytes], int, str, str]] = {
    "bad_crc": (bad_crc, 422, "not_a_model", "CRC"),
    "corrupt_deflate": (corrupt_deflate, 422, "not_a_model", WEIGHTS_NAME),
    "corrupt_card": (corrupt_card, 422, "not_a_model", CARD_NAME),
    "lzma_member": (lzma_member, 422, "not_a_model", "lzma"),
    "bzip2_member": (bzip2_member, 422, "not_a_model", "bzip2"),
    "unknown_method": (unknown_method, 422, "not_a_model", WEIGHTS_NAME),
    "unknown_method_card": (unknown_method_card, 422, "not_a_model", CARD_NAME),
    "encrypted": (encrypted, 422, "not_a_model", "encrypted"),
    "too_many_entries": (too_many_entries, 422, "not_a_model", "1000"),
    "truncated": (truncated, 422, "not_a_model", "truncated"),
    "cut_data": (cut_data, 422, "not_a_model", "cut off"),
    "lying_size": (lying_size, 422, "not_a_model", "CRC"),
    "declared_huge": (declared_huge, 413, "too_large", "limit"),
}
