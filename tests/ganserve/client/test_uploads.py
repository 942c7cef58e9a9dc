"""Dataset folders are zipped into a temporary file; a given zip is sent as it is."""

import zipfile
from contextlib import ExitStack

import pytest

from ganserve.client.uploads import DatasetArchive, Upload, file_upload
from tests.ganserve.client.fake_server import png


def _folder(tmp_path):
    folder = tmp_path / "pairs"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "1.png").write_bytes(png())
    (folder / "train" / "2.png").write_bytes(png(colour=(1, 1, 1)))
    (folder / ".DS_Store").write_bytes(b"x")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref")
    return folder


def test_a_folder_is_zipped_to_a_temporary_file_and_removed(tmp_path):
    folder = _folder(tmp_path)
    with DatasetArchive(folder) as archive:
        path = archive.path
        assert path is not None and path.is_file() and not path.is_relative_to(folder)
        with zipfile.ZipFile(path) as zipped:
            assert zipped.namelist() == ["train/1.png", "train/2.png"]
            assert {i.compress_type for i in zipped.infolist()} == {zipfile.ZIP_STORED}
        upload = archive.upload()
        assert upload.filename == "pairs.zip" and upload.content == path
    assert not path.exists()


def test_a_zip_is_sent_as_it_is_and_kept(tmp_path):
    given = tmp_path / "faces.zip"
    with zipfile.ZipFile(given, "w") as out:
        out.writestr("a.png", png())
    with DatasetArchive(given) as archive:
        assert archive.path == given
        assert archive.upload().filename == "faces.zip"
    assert given.is_file()


def test_neither_a_folder_nor_a_zip_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        DatasetArchive(tmp_path / "missing")
    other = tmp_path / "notes.txt"
    other.write_text("hi")
    with pytest.raises(ValueError, match="neither a folder nor a zip"):
        DatasetArchive(other)


def test_a_file_upload_is_opened_for_each_attempt(tmp_path):
    path = tmp_path / "model.zip"
    path.write_bytes(b"PK...")
    upload = file_upload(path, "application/zip")
    assert upload == Upload("model.zip", path, "application/zip")
    for _ in range(2):
        with ExitStack() as stack:
            _, file, _ = upload.open(stack)
            assert file.read() == b"PK..."
        assert file.closed
    with pytest.raises(FileNotFoundError):
        file_upload(tmp_path / "nope.zip", "application/zip")
