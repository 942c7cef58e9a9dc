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

Every zip is read through `core.zip_reading` (the reader of dataset uploads too): at most
`MAX_ZIP_ENTRIES` entries, a model folder's files neither encrypted nor compressed other than
stored or deflate (`core.zip_reading.STANDARD_METHODS`; bzip2 and LZMA are refused: safetensors
barely compress, and an LZMA entry's header sets its decoder's dictionary size), their declared
sizes within the limit, and their data intact (every error of an entry's data, a bad CRC-32
included, names the entry as the zip names it). `NotAModel` says what is wrong; `ArchiveTooLarge`
(a `NotAModel`) is a size over a limit.

The gateway checks an upload with `upload_kind` and, for a folder zip, `check_folder_zip` (which
reads every model file to its end, so a corrupt zip is refused before a job is queued; the card
is then checked with `core.model_folder.check_card_json`); the worker extracts with
`extract_folder`, which checks all of it again. Torch-free.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from core.model_folder import (
    CONFIG_FILE,
    DISCRIMINATOR_FILE,
    WEIGHTS_FILE,
    ModelFolderError,
    parse_card,
)
from core.zip_reading import (
    ZipProblem,
    check_entry,
    declared_bytes,
    open_zip,
    read_entry,
    read_whole_entry,
    verify_entry,
)

FOLDER_FILES = (CONFIG_FILE, WEIGHTS_FILE, DISCRIMINATOR_FILE)
# Names of an import's files in its job's upload folder.
UPLOADED_FOLDER = "model.zip"
UPLOADED_GENERATOR = "net_G.pth"
UPLOADED_DISCRIMINATOR = "net_D.pth"
MAX_CARD_BYTES = 1024 * 1024
# The most entries a model zip (or a reference checkpoint, a zip too) may have: a model folder
# has three files, a PyTorch file one per tensor (a few hundred for the reference's networks).
MAX_ZIP_ENTRIES = 1000
_PICKLE_PROTOCOL_2_OR_LATER = b"\x80"
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_NEITHER = (
    "the file is neither a zip of a ganserve model folder nor a PyTorch checkpoint "
    "(.pth) of the pix2pix reference implementation"
)


class NotAModel(ValueError):
    """An upload that is neither kind of model file; the message says what was expected."""


class ArchiveTooLarge(NotAModel):
    """A model zip whose files are (or unpack to) more bytes than the limit."""


def _refusal(problem: ZipProblem) -> NotAModel:
    return (ArchiveTooLarge if problem.too_large else NotAModel)(problem.message)


def folder_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The model folder's members of a zip by file name (`config.json`, ...), at its top or in
    one folder; NotAModel when the zip holds no model folder, or an ambiguous one, or one whose
    files are encrypted or compressed with a method other than stored or deflate."""
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if info.is_dir() or path.name not in FOLDER_FILES or len(path.parts) > 2:
            continue
        if path.name in found:
            raise NotAModel(f"the zip holds more than one {path.name}; zip one model folder")
        found[path.name] = info
    if len({PurePosixPath(i.filename).parent for i in found.values()}) > 1:
        raise NotAModel("the model folder's files lie in different folders of the zip")
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if name not in found]
    if missing:
        raise NotAModel(
            f"the zip has no {' and no '.join(missing)}: a model zip holds a model folder "
            f"({CONFIG_FILE}, {WEIGHTS_FILE}, optionally {DISCRIMINATOR_FILE})"
        )
    try:
        for info in found.values():
            check_entry(info)
    except ZipProblem as problem:
        raise _refusal(problem) from None
    return found


def _is_torch_zip(archive: zipfile.ZipFile) -> bool:
    return any(PurePosixPath(n).name == "data.pkl" for n in archive.namelist())


def upload_kind(file: IO[bytes]) -> str:
    """ "folder" or "reference" for an uploaded file (seekable, read from its start and rewound);
    NotAModel when it is neither, or a zip that cannot be read."""
    file.seek(0)
    head = file.read(4)
    file.seek(0)
    if head.startswith(_PICKLE_PROTOCOL_2_OR_LATER):
        return "reference"  # a PyTorch checkpoint in the pre-1.6 format (a bare pickle)
    if not head.startswith(_ZIP_LOCAL_HEADER) and not zipfile.is_zipfile(file):
        file.seek(0)
        raise NotAModel(_NEITHER)
    try:
        with open_zip(file, max_entries=MAX_ZIP_ENTRIES) as archive:
            names = {PurePosixPath(n).name for n in archive.namelist()}
            if _is_torch_zip(archive) and CONFIG_FILE not in names:
                return "reference"
            folder_members(archive)
            return "folder"
    except ZipProblem as problem:
        raise _refusal(problem) from None
    finally:
        file.seek(0)


def _parse_card(data: bytes) -> dict[str, Any]:
    try:
        raw = parse_card(data)
    except ModelFolderError as exc:
        raise NotAModel(f"{exc} (in the zip)") from None
    if not isinstance(raw, dict):
        raise NotAModel(f"{CONFIG_FILE} in the zip is not a JSON object")
    return raw


def check_folder_zip(
    file: IO[bytes], max_bytes: int
) -> tuple[dict[str, Any], dict[str, zipfile.ZipInfo], int]:
    """Check a folder zip as the worker will read it: its parsed `config.json`, its model
    folder's members and their declared size in bytes.

    Every member is read to its end (decompressed, its CRC-32 checked, nothing kept but the
    card), so a corrupt zip is refused here; ArchiveTooLarge when the files declare more than
    `max_bytes` together or the card more than `MAX_CARD_BYTES`, NotAModel for the rest."""
    try:
        with open_zip(file, max_entries=MAX_ZIP_ENTRIES) as archive:
            members = folder_members(archive)
            declared = declared_bytes(members.values(), max_bytes)
            card_info = members[CONFIG_FILE]
            if card_info.file_size > MAX_CARD_BYTES:
                raise ArchiveTooLarge(f"{CONFIG_FILE} is larger than {MAX_CARD_BYTES} bytes")
            card = _parse_card(read_whole_entry(archive, card_info, MAX_CARD_BYTES))
            for name, info in members.items():
                if name != CONFIG_FILE:
                    verify_entry(archive, info)
    except ZipProblem as problem:
        raise _refusal(problem) from None
    return card, members, declared


def read_card_from_zip(file: IO[bytes]) -> tuple[dict[str, Any], dict[str, zipfile.ZipInfo]]:
    """The parsed `config.json` of a folder zip and its members (NotAModel when unreadable);
    unlike `check_folder_zip`, the weights are not read."""
    try:
        with open_zip(file, max_entries=MAX_ZIP_ENTRIES) as archive:
            members = folder_members(archive)
            card_info = members[CONFIG_FILE]
            if card_info.file_size > MAX_CARD_BYTES:
                raise ArchiveTooLarge(f"{CONFIG_FILE} is larger than {MAX_CARD_BYTES} bytes")
            return _parse_card(read_whole_entry(archive, card_info, MAX_CARD_BYTES)), members
    except ZipProblem as problem:
        raise _refusal(problem) from None


def extract_folder(zip_path: Path, dest: Path, max_bytes: int) -> dict[str, str]:
    """Copy a folder zip's model files (and nothing else) into `dest`; {file name: the member's
    name in the zip} of the files written.

    Each member is copied by streaming, and ArchiveTooLarge is raised once the files together
    pass `max_bytes` (a zip's declared sizes are checked first, and zipfile reads no more than
    them), so a zip bomb fills no disk; NotAModel, naming the member, for a corrupt one."""
    written: dict[str, str] = {}
    total = 0
    try:
        with open_zip(zip_path, max_entries=MAX_ZIP_ENTRIES) as archive:
            members = folder_members(archive)
            declared_bytes(members.values(), max_bytes)
            for name, info in members.items():
                with open(dest / name, "wb") as target:
                    for chunk in read_entry(archive, info):
                        total += len(chunk)
                        if total > max_bytes:
                            raise ArchiveTooLarge(
                                f"the model files are larger than the limit of {max_bytes} bytes"
                            )
                        target.write(chunk)
                written[name] = info.filename
    except ZipProblem as problem:
        raise _refusal(problem) from None
    return written


def write_folder_zip(folder: Path, out: Path, root: str) -> None:
    """Zip a model folder's files under `root/` into `out` (stored: safetensors do not shrink);
    FileNotFoundError when its card or weights are not there (a version deleted meanwhile)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in FOLDER_FILES:
            path = folder / name
            if name != DISCRIMINATOR_FILE or path.is_file():
                archive.write(path, f"{root}/{name}")
