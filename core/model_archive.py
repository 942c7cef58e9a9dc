"""Model files that travel: what `POST /v1/models` accepts and `GET .../export` returns.

Two kinds of upload register a model (`core.model_folder` defines the folder format):

- **folder**: a zip of a model folder, `config.json` + `model.safetensors` and optionally
  `discriminator.safetensors`, at the zip's top or inside one folder (what
  `GET /v1/models/{id}/export?format=safetensors` returns, so an export imports again).
  Only those three members are ever read; nothing else in the zip is extracted, so no name in it
  can point outside the model folder.
- **reference**: a checkpoint of the pix2pix reference implementation (junyanz
  pytorch-CycleGAN-and-pix2pix, `*_net_G.pth`, optionally its `*_net_D.pth`): a PyTorch file,
  which is a zip holding `<name>/data.pkl` (torch >= 1.6) or a bare pickle (older). Only the
  worker opens it, with `torch.load(weights_only=True)`; the gateway only recognises the layout.

The gateway checks an upload with `upload_kind` (and a folder zip's card with
`core.model_folder.check_card_json`) before it queues the import job; the worker extracts with
`extract_folder`. Torch-free.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from core.model_folder import CONFIG_FILE, DISCRIMINATOR_FILE, WEIGHTS_FILE

FOLDER_FILES = (CONFIG_FILE, WEIGHTS_FILE, DISCRIMINATOR_FILE)
# Names of an import's files in its job's upload folder.
UPLOADED_FOLDER = "model.zip"
UPLOADED_GENERATOR = "net_G.pth"
UPLOADED_DISCRIMINATOR = "net_D.pth"
MAX_CARD_BYTES = 1024 * 1024
_PICKLE_PROTOCOL_2_OR_LATER = b"\x80"


class NotAModel(ValueError):
    """An upload that is neither kind of model file; the message says what was expected."""


def folder_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The model folder's members of a zip by file name (`config.json`, ...), at its top or in
    one folder; NotAModel when the zip holds no model folder, or an ambiguous or encrypted one."""
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if info.is_dir() or path.name not in FOLDER_FILES or len(path.parts) > 2:
            continue
        if path.name in found:
            raise NotAModel(f"the zip holds more than one {path.name}; zip one model folder")
        if info.flag_bits & 0x1:
            raise NotAModel(f"{info.filename} in the zip is encrypted")
        found[path.name] = info
    if len({PurePosixPath(i.filename).parent for i in found.values()}) > 1:
        raise NotAModel("the model folder's files lie in different folders of the zip")
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if name not in found]
    if missing:
        raise NotAModel(
            f"the zip has no {' and no '.join(missing)}: a model zip holds a model folder "
            f"({CONFIG_FILE}, {WEIGHTS_FILE}, optionally {DISCRIMINATOR_FILE})"
        )
    return found


def _is_torch_zip(archive: zipfile.ZipFile) -> bool:
    return any(PurePosixPath(n).name == "data.pkl" for n in archive.namelist())


def upload_kind(file: IO[bytes]) -> str:
    """ "folder" or "reference" for an uploaded file (seekable, read from its start and rewound);
    NotAModel when it is neither."""
    file.seek(0)
    head = file.read(4)
    file.seek(0)
    if head.startswith(_PICKLE_PROTOCOL_2_OR_LATER):
        return "reference"  # a PyTorch checkpoint in the pre-1.6 format (a bare pickle)
    if not zipfile.is_zipfile(file):
        file.seek(0)
        raise NotAModel(
            "the file is neither a zip of a ganserve model folder nor a PyTorch checkpoint "
            "(.pth) of the pix2pix reference implementation"
        )
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            if _is_torch_zip(archive) and CONFIG_FILE not in {
                PurePosixPath(n).name for n in archive.namelist()
            }:
                return "reference"
            folder_members(archive)
            return "folder"
    except zipfile.BadZipFile as exc:
        raise NotAModel(f"the zip cannot be read: {exc}") from None
    finally:
        file.seek(0)


def read_card_from_zip(file: IO[bytes]) -> tuple[dict[str, Any], dict[str, zipfile.ZipInfo]]:
    """The parsed `config.json` of a folder zip and its members (NotAModel when unreadable)."""
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            members = folder_members(archive)
            card_info = members[CONFIG_FILE]
            if card_info.file_size > MAX_CARD_BYTES:
                raise NotAModel(f"{CONFIG_FILE} is larger than {MAX_CARD_BYTES} bytes")
            raw = json.loads(archive.read(card_info))
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NotAModel(f"{CONFIG_FILE} in the zip cannot be read: {exc}") from None
    finally:
        file.seek(0)
    return raw, members


def extract_folder(zip_path: Path, dest: Path, max_bytes: int) -> list[str]:
    """Copy a folder zip's model files (and nothing else) into `dest`; their names.

    Each member is copied by streaming, and NotAModel is raised once the files together pass
    `max_bytes` (a zip's declared sizes can lie), so a zip bomb fills no disk."""
    written: list[str] = []
    total = 0
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for name, info in folder_members(archive).items():
                with archive.open(info) as source, open(dest / name, "wb") as target:
                    while chunk := source.read(1024 * 1024):
                        total += len(chunk)
                        if total > max_bytes:
                            raise NotAModel(
                                f"the model files are larger than the limit of {max_bytes} bytes"
                            )
                        target.write(chunk)
                written.append(name)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise NotAModel(f"the zip cannot be read: {exc}") from None
    return written


def write_folder_zip(folder: Path, out: Path, root: str) -> None:
    """Zip a model folder's files under `root/` into `out` (stored: safetensors do not shrink)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in FOLDER_FILES:
            path = folder / name
            if path.is_file():
                archive.write(path, f"{root}/{name}")
