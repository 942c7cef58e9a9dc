"""Things the gateway tests upload or find on disk: images, zips, model folders.

`expect_error` checks an answer against the API's error shape.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import Image

# The gateway never loads weights, so a model folder only needs `config.json` beside a file named
# `model.safetensors`. The bytes written there are a PLACEHOLDER FOR THE GATEWAY TESTS ONLY: they
# are not a loadable checkpoint, and a worker given such a model would refuse it.
PLACEHOLDER_WEIGHTS = b"placeholder: not a safetensors file (gateway tests only)"

TEST_MODELS = {
    # id: (architecture, family, task, num_classes)
    "facades": ("pix2pix-generator", "pix2pix", "translate", 0),
    "faces": ("pggan-generator", "pggan", "sample", 0),
    "digits": ("unetgan-generator", "unetgan", "sample", 10),
}


TEST_LATENT_DIM = 8


def write_model_folder(
    models_dir: Path,
    model_id: str,
    *,
    architecture: str,
    family: str,
    task: str,
    num_classes: int = 0,
    image_size: int = 64,
    channels: int = 3,
    discriminator: str | None = None,
) -> Path:
    """A model folder as the gateway reads it (config.json + placeholder weights), with a
    placeholder discriminator of architecture `discriminator` when given."""
    folder = models_dir / model_id
    folder.mkdir(parents=True, exist_ok=True)
    card = {
        "architecture": architecture,
        "family": family,
        "task": task,
        "config": {
            "image_size": image_size,
            "channels": channels,
            "num_classes": num_classes,
            **({"latent_dim": TEST_LATENT_DIM} if task == "sample" else {}),
        },
        "image_size": image_size,
        "channels": channels,
        "num_classes": num_classes,
        "provenance": {"run": f"run-{model_id}", "step": 100},
        "metrics": {"fid": 42.0},
        "runtime_state": {},
        "format_version": 1,
    }
    if discriminator is not None:
        card["discriminator"] = {"architecture": discriminator, "config": {}}
        (folder / "discriminator.safetensors").write_bytes(PLACEHOLDER_WEIGHTS)
    (folder / "config.json").write_text(json.dumps(card))
    (folder / "model.safetensors").write_bytes(PLACEHOLDER_WEIGHTS)
    return folder


def write_test_models(models_dir: Path) -> None:
    """The three models of `TEST_MODELS`."""
    for model_id, (architecture, family, task, classes) in TEST_MODELS.items():
        write_model_folder(
            models_dir,
            model_id,
            architecture=architecture,
            family=family,
            task=task,
            num_classes=classes,
        )


def image_bytes(
    size: tuple[int, int] = (32, 24), *, fmt: str = "PNG", mode: str = "RGB", noise: bool = False
) -> bytes:
    """An encoded image (a gradient, or random noise that does not compress)."""
    width, height = size
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(width * height * 3))
    else:
        image = Image.linear_gradient("L").resize(size).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def truncated_png() -> bytes:
    """A PNG whose header is intact but whose pixel data is cut off."""
    data = image_bytes((64, 64), noise=True)
    return data[: len(data) // 2]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def bilevel_png(width: int, height: int) -> bytes:
    """A real, small 1-bit PNG with many pixels (it compresses to a few kB)."""
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip with these file entries (names as given, even unsafe ones)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def zip_with_symlink(name: str = "link.png", target: str = "/etc/passwd") -> bytes:
    """A zip holding a symbolic link entry (Unix mode bits S_IFLNK)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ok.png", image_bytes())
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buffer.getvalue()


def zip_with_lying_size(real_size: int = 200_000, claimed: int = 10) -> bytes:
    """A zip whose one entry declares `claimed` bytes but inflates to `real_size` (both headers)."""
    data = bytearray(zip_bytes({"bomb.png": b"\x00" * real_size}))
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, claimed)  # local header: uncompressed size
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, claimed)  # central directory: uncompressed size
    return bytes(data)


def aligned_pair(size: int = 16) -> bytes:
    """An aligned A|B image (A on the left half, B on the right)."""
    return image_bytes((2 * size, size))


def paired_aligned_zip(count: int = 3, wrapper: str = "facades/") -> bytes:
    """A paired dataset in the aligned layout, wrapped in one top-level folder."""
    entries = {f"{wrapper}train/{i}.png": aligned_pair() for i in range(count)}
    entries[f"{wrapper}val/0.png"] = aligned_pair()
    return zip_bytes(entries)


def paired_folders_zip() -> bytes:
    """A paired dataset in A/ + B/ folders: two matching names, one without a partner."""
    return zip_bytes(
        {
            "A/x.png": image_bytes(),
            "B/x.jpg": image_bytes(fmt="JPEG"),
            "A/y.png": image_bytes(),
            "B/y.png": image_bytes(),
            "A/lonely.png": image_bytes(),
        }
    )


def images_zip(count: int = 4) -> bytes:
    """An unconditional image set in nested folders, with a stray text file."""
    entries = {f"photos/set{i % 2}/{i}.png": image_bytes() for i in range(count)}
    entries["photos/README.txt"] = b"not an image"
    entries["photos/.hidden.png"] = image_bytes()
    return zip_bytes(entries)


def labeled_zip(classes: dict[str, int] | None = None) -> bytes:
    """One folder per class."""
    classes = classes or {"cat": 2, "dog": 3}
    return zip_bytes(
        {f"{name}/{i}.png": image_bytes() for name, n in classes.items() for i in range(n)}
    )


def sample_result(
    count: int,
    *,
    model: str = "faces@1",
    seed: int | None = 1,
    latent_dim: int = 8,
    class_labels: list[int] | None = None,
) -> dict:
    """A sampling job's result as a worker records it (`workers.inference`)."""
    return {
        "count": count,
        "model": model,
        "seed": seed,
        "class_label": None,
        "truncation": None,
        "precision": "fp32",
        "latent_count": count,
        "latent_dim": latent_dim,
        "class_labels": class_labels,
    }


def translation_result(width: int, height: int, *, model: str = "facades@1") -> dict:
    """A translation job's result as a worker records it (`workers.inference`)."""
    return {
        "count": 1,
        "model": model,
        "seed": 1,
        "mode": "native",
        "tiled": False,
        "precision": "fp32",
        "width": width,
        "height": height,
    }


def given(params: dict) -> dict:
    """A job's params without the optional fields the request left out (null in its JSON)."""
    return {k: v for k, v in params.items() if v is not None}


def expect_error(response, status: int, code: str) -> str:
    """Check that `response` is a problem (RFC 9457) with `status`, `code` and a detail; the
    detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["type"] == f"urn:ganserve:problem:{code}"
    assert response.json()["code"] == code
    message = response.json()["detail"]
    assert message
    return message
