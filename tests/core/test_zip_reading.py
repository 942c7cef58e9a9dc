"""core.zip_reading, the one reader of uploaded zips, and its two users' refusals in process:
the worker's `extract_folder` (model imports) and the gateway's `extract_zip` (datasets)."""

from __future__ import annotations

import io
import zipfile

import pytest

from core.model_archive import (
    MAX_ZIP_ENTRIES,
    ArchiveTooLarge,
    NotAModel,
    check_folder_zip,
    extract_folder,
)
from core.zip_reading import (
    PYTHON_METHODS,
    ZipProblem,
    open_zip,
    read_whole_entry,
)
from service.datasets import extract_zip
from service.errors import ApiError
from tests import bad_zips


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> bytes:
    return bad_zips.valid_card(tmp_path_factory.mktemp("card"))


@pytest.mark.parametrize("case", sorted(bad_zips.MALFORMED))
def test_the_worker_refuses_each_malformed_zip_and_writes_nothing_outside(tmp_path, card, case):
    maker, status, _, word = bad_zips.MALFORMED[case]
    (tmp_path / "model.zip").write_bytes(maker(card))
    dest = tmp_path / "staging"
    dest.mkdir()
    expected = ArchiveTooLarge if status == 413 else NotAModel
    with pytest.raises(expected) as refused:
        extract_folder(tmp_path / "model.zip", dest, 1024**3)
    assert word.lower() in str(refused.value).lower()
    assert str(tmp_path) not in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip", "staging"]


def test_the_worker_extracts_a_good_zip_and_names_its_members(tmp_path, card):
    (tmp_path / "model.zip").write_bytes(bad_zips.model_zip(card))
    written = extract_folder(tmp_path / "model.zip", tmp_path, 10**6)
    assert written == {
        "config.json": bad_zips.CARD_NAME,
        "model.safetensors": bad_zips.WEIGHTS_NAME,
    }
    assert (tmp_path / "model.safetensors").read_bytes() == bad_zips.WEIGHTS


def test_the_worker_stops_a_bomb_at_its_limit(tmp_path, card):
    (tmp_path / "model.zip").write_bytes(bad_zips.deflate_bomb(card, size=100_000))
    with pytest.raises(ArchiveTooLarge, match="limit of 50000"):
        extract_folder(tmp_path / "model.zip", tmp_path, 50_000)


def test_the_gateway_check_reads_the_weights_to_their_end(card):
    good = bad_zips.model_zip(card)
    raw, members, declared = check_folder_zip(io.BytesIO(good), 10**6)
    assert raw["family"] == "pix2pix" and set(members) == {"config.json", "model.safetensors"}
    assert declared == len(card) + len(bad_zips.WEIGHTS)
    with pytest.raises(NotAModel, match="CRC-32"):
        check_folder_zip(io.BytesIO(bad_zips.bad_crc(card)), 10**6)


def test_an_understated_entry_count_is_caught_by_the_directory_size(card):
    data = bytearray(bad_zips.too_many_entries(card, count=1500))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # "1 entry"
    with (
        pytest.raises(ZipProblem, match="corrupt|entries") as refused,
        open_zip(io.BytesIO(bytes(data)), max_entries=MAX_ZIP_ENTRIES),
    ):
        pass
    assert not refused.value.too_large


def test_not_a_zip_and_a_truncated_one_say_which(card):
    with (
        pytest.raises(ZipProblem, match="not a valid zip"),
        open_zip(io.BytesIO(b"hello"), max_entries=10),
    ):
        pass
    with (
        pytest.raises(ZipProblem, match="truncated"),
        open_zip(io.BytesIO(bad_zips.truncated(card)), max_entries=10),
    ):
        pass


def test_a_file_passed_in_is_rewound_and_left_open(card):
    file = io.BytesIO(bad_zips.model_zip(card))
    file.seek(7)
    with open_zip(file, max_entries=10) as archive:
        assert read_whole_entry(archive, archive.getinfo(bad_zips.CARD_NAME), 10**6) == card
    assert not file.closed and file.tell() == 0


def test_datasets_read_through_the_same_reader(tmp_path, card):
    lzma_images = bad_zips.model_zip(card, compression=zipfile.ZIP_LZMA)
    assert zipfile.ZIP_LZMA in PYTHON_METHODS
    extract_zip(io.BytesIO(lzma_images), tmp_path / "ok", max_entries=10, max_bytes=10**6)
    assert (tmp_path / "ok" / "m" / "model.safetensors").read_bytes() == bad_zips.WEIGHTS
    for maker, word in (
        (bad_zips.bad_crc, "CRC-32"),
        (bad_zips.corrupt_deflate, "'m/model.safetensors' is corrupt"),
        (bad_zips.unknown_method, "unknown method (99)"),
        (bad_zips.encrypted, "encrypted"),
        (bad_zips.cut_data, "cut off"),
    ):
        with pytest.raises(ApiError) as refused:
            extract_zip(io.BytesIO(maker(card)), tmp_path / "x", max_entries=10, max_bytes=10**6)
        assert refused.value.status_code == 400 and refused.value.code == "bad_archive"
        assert word in refused.value.message, refused.value.message
        assert not (tmp_path / "x").exists()
