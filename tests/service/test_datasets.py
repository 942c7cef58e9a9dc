"""service.datasets: safe zip extraction and layout checks (in process; HTTP in api/routes)."""

from pathlib import Path

import pytest

from service.datasets import DatasetKind, extract_zip, inspect_dataset, unwrap
from service.errors import ApiError
from tests.service.factories import (
    image_bytes,
    zip_bytes,
    zip_with_lying_size,
    zip_with_symlink,
)

LIMITS = {"max_entries": 100, "max_bytes": 10**6}


def _extract(tmp_path: Path, data: bytes, **limits) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    archive = tmp_path / "a.zip"
    archive.write_bytes(data)
    extract_zip(archive, tmp_path / "out", **(LIMITS | limits))
    return tmp_path / "out"


def _refusal(tmp_path: Path, data: bytes, **limits) -> str:
    with pytest.raises(ApiError) as caught:
        _extract(tmp_path, data, **limits)
    assert caught.value.code == "bad_archive"
    assert not (tmp_path / "out").exists()
    return caught.value.message


def test_extracts_files_and_folders(tmp_path):
    out = _extract(tmp_path, zip_bytes({"a/b.png": b"1", "c.png": b"22", "__MACOSX/._c.png": b""}))
    assert (out / "a" / "b.png").read_bytes() == b"1"
    assert (out / "c.png").read_bytes() == b"22"
    assert not (out / "__MACOSX").exists()


@pytest.mark.parametrize(
    ("name", "word"),
    [
        ("../x.png", ".."),
        ("a/../../x.png", ".."),
        ("/abs.png", "absolute"),
        ("C:/win.png", "absolute"),
        ("\\\\server\\x.png", "absolute"),
        ("..\\x.png", ".."),
    ],
)
def test_unsafe_names(tmp_path, name, word):
    assert word in _refusal(tmp_path, zip_bytes({name: b"x"}))
    assert not (tmp_path / "x.png").exists()


def test_links_entries_and_sizes(tmp_path):
    assert "link" in _refusal(tmp_path, zip_with_symlink())
    assert "entries" in _refusal(
        tmp_path, zip_bytes({f"{i}": b"" for i in range(5)}), max_entries=4
    )
    assert "bytes" in _refusal(tmp_path, zip_bytes({"z": b"\0" * 2000}), max_bytes=1999)
    assert "not a valid zip" in _refusal(tmp_path, b"garbage")


def test_lying_sizes_are_stopped(tmp_path):
    message = _refusal(tmp_path, zip_with_lying_size(real_size=200_000, claimed=10))
    assert "declared size" in message or "corrupt" in message


def test_unwrap_and_inspect(tmp_path):
    data = _extract(
        tmp_path,
        zip_bytes({"set/cat/1.png": image_bytes(), "set/dog/2.png": image_bytes(), "x.txt": b""}),
    )
    assert unwrap(data, DatasetKind.labeled) == data  # two top-level entries: nothing to unwrap
    (data / "x.txt").unlink()
    root = unwrap(data, DatasetKind.labeled)
    assert root == data / "set"
    assert inspect_dataset(root, DatasetKind.labeled) == (2, ["cat", "dog"], None)
    assert unwrap(root, DatasetKind.labeled) == root
    assert inspect_dataset(root, DatasetKind.images) == (2, [], None)
    single_class = _extract(tmp_path / "b", zip_bytes({"cat/1.png": image_bytes()}))
    assert unwrap(single_class, DatasetKind.labeled) == single_class  # a class, not a wrapper
    assert unwrap(single_class, DatasetKind.images) == single_class / "cat"
