"""POST /v1/models with malformed zips: each is a 4xx naming what is wrong, and nothing changes.

A gateway of its own (a real process, real Redis, real HTTP); no worker runs, so an accepted
import stays queued. Each case of `tests.bad_zips.MALFORMED` breaks one thing of a model
zip; the gateway reads every model file of a zip to its end before it queues anything, so every
case is refused at once: 422 `not_a_model` (corrupt, truncated, encrypted, oddly compressed, too
many entries) or 413 `too_large` (a zip bomb), naming the entry by its name in the zip.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator

import pytest

from core.model_archive import MAX_ZIP_ENTRIES
from tests import bad_zips
from tests.service.conftest import Gateway, start_gateway
from tests.service.factories import expect_error


@pytest.fixture(scope="module")
def zip_gateway(redis_url, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway of this module's own (its storage changes only by what these tests send)."""
    server = start_gateway(tmp_path_factory.mktemp("model-zips"), redis_url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> bytes:
    return bad_zips.valid_card(tmp_path_factory.mktemp("card"))


def stored(gateway: Gateway) -> dict[str, str]:
    """Every file under the storage root (the embedded Redis aside), by its content's digest."""
    return {
        str(p.relative_to(gateway.data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(gateway.data_dir.rglob("*"))
        if p.is_file()
    }


def post(gateway: Gateway, content: bytes, name: str = "m.zip"):
    with gateway.client() as http:
        return http.post("/v1/models", files={"file": (name, content, "application/zip")})


def job_count(gateway: Gateway) -> int:
    return len(gateway.redis().keys("*"))


@pytest.mark.parametrize("case", sorted(bad_zips.MALFORMED))
def test_a_malformed_model_zip_is_refused_and_changes_nothing(zip_gateway, card, case):
    maker, status, code, word = bad_zips.MALFORMED[case]
    content = maker(card)
    before, keys = stored(zip_gateway), job_count(zip_gateway)
    message = expect_error(post(zip_gateway, content), status, code)
    assert word.lower() in message.lower(), message
    assert str(zip_gateway.data_dir) not in message
    assert stored(zip_gateway) == before  # no upload folder, no model, nothing rewritten
    assert job_count(zip_gateway) == keys  # no job record, nothing queued


def test_errors_name_the_entry_as_the_zip_names_it(zip_gateway, card):
    for maker in (bad_zips.bad_crc, bad_zips.corrupt_deflate, bad_zips.encrypted):
        message = expect_error(post(zip_gateway, maker(card)), 422, "not_a_model")
        assert "'m/model.safetensors'" in message, message


def test_the_entry_limit_is_the_constant(zip_gateway, card):
    at_limit = bad_zips.too_many_entries(card, count=MAX_ZIP_ENTRIES)
    with zipfile.ZipFile(io.BytesIO(at_limit)) as archive:
        assert len(archive.infolist()) == MAX_ZIP_ENTRIES
    accepted = post(zip_gateway, at_limit)
    assert accepted.status_code == 202, accepted.text
    over = bad_zips.too_many_entries(card, count=MAX_ZIP_ENTRIES + 1)
    message = expect_error(post(zip_gateway, over), 422, "not_a_model")
    assert f"{MAX_ZIP_ENTRIES + 1} entries" in message and str(MAX_ZIP_ENTRIES) in message


def test_an_end_record_that_claims_too_many_entries_is_refused_before_parsing(zip_gateway, card):
    data = bytearray(bad_zips.model_zip(card))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (60_000).to_bytes(2, "little") * 2  # entries here, in all
    message = expect_error(post(zip_gateway, bytes(data)), 422, "not_a_model")
    assert "60000 entries" in message


def test_stored_and_deflated_model_zips_are_accepted(zip_gateway, card):
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        content = bad_zips.model_zip(card, compression=compression)
        response = post(zip_gateway, content)
        assert response.status_code == 202, response.text
        assert response.json()["kind"] == "model_import"


def test_a_zip_bomb_is_too_large_before_anything_is_inflated(strict_gateway, card):
    """2 MB of zeros deflate to 2 kB: the declared size is over the limit (40000), 413."""
    content = bad_zips.deflate_bomb(card)
    assert len(content) < 40_000
    before = stored(strict_gateway)
    message = expect_error(post(strict_gateway, content), 413, "too_large")
    assert "2000" in message and "40000" in message
    assert stored(strict_gateway) == before


def test_a_refused_zip_leaves_the_stored_models_as_they_were(zip_gateway, card):
    """Already stored models keep their files, byte for byte, after every kind of refusal."""
    models = zip_gateway.data_dir / "models"
    before = {str(p.relative_to(models)): p.read_bytes() for p in models.rglob("*") if p.is_file()}
    for maker, _, _, _ in bad_zips.MALFORMED.values():
        post(zip_gateway, maker(card), name="facades.zip")
    after = {str(p.relative_to(models)): p.read_bytes() for p in models.rglob("*") if p.is_file()}
    assert after == before
    with zip_gateway.client() as http:
        listed = {m["id"] for m in http.get("/v1/models").json()["models"]}
    assert {"facades", "faces", "digits"} <= listed
    assert json.loads((models / "facades" / "config.json").read_text())["family"] == "pix2pix"
