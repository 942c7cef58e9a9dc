"""Which files `ganserve translate` takes and where their outputs go (no server needed)."""

from pathlib import Path

import pytest

from ganserve.client import ConnectionFailed, NotFound, QueueFull, Unauthorized
from ganserve.file_translation import PlanError, plan, stops_the_run


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_a_folder_is_walked_by_extension_and_mirrored(tmp_path):
    photos = tmp_path / "photos"
    for name in ("a.png", "b.JPG", "c.jpeg", "d.WebP", "e.bmp", "deep/er/f.png", "sub/g.jpg"):
        touch(photos / name)
    for name in ("notes.txt", ".hidden.png", ".cache/h.png", "noext"):
        touch(photos / name)
    out = tmp_path / "out"
    todo = plan([str(photos)], out)
    outputs = sorted(item.output.relative_to(out).as_posix() for item in todo.items)
    assert outputs == [
        "a.png",
        "b.png",
        "c.png",
        "d.png",
        "deep/er/f.png",
        "e.png",
        "sub/g.png",
    ]
    assert {item.label for item in todo.items} >= {str(photos / "sub" / "g.jpg")}


def test_files_go_to_out_by_name_and_existing_outputs_are_skipped(tmp_path):
    one, two = touch(tmp_path / "x" / "one.jpg"), touch(tmp_path / "two.webp")
    out = tmp_path / "out"
    touch(out / "one.png")
    todo = plan([str(one), str(two), str(one)], out)  # the same file twice: once
    assert [i.output for i in todo.items] == [out / "two.png"]
    assert [i.output for i in todo.skipped] == [out / "one.png"] and todo.total == 2
    again = plan([str(one), str(two)], out, overwrite=True)
    assert len(again.items) == 2 and not again.skipped


def test_outputs_take_the_suffix_of_the_result_format(tmp_path):
    photos = tmp_path / "photos"
    for name in ("a.png", "sub/b.webp"):
        touch(photos / name)
    out = tmp_path / "out"
    touch(out / "a.png")  # a PNG output of another run: not a WebP one, so not skipped
    todo = plan([str(photos)], out, suffix=".webp")
    assert sorted(i.output.relative_to(out).as_posix() for i in todo.items) == [
        "a.webp",
        "sub/b.webp",
    ]
    with pytest.raises(PlanError, match="overwritten by its own translation"):
        plan([str(photos / "sub" / "b.webp")], photos / "sub", suffix=".webp")


def test_an_output_folder_inside_the_input_folder_is_not_read_again(tmp_path):
    photos = tmp_path / "photos"
    touch(photos / "a.png")
    touch(photos / "out" / "a.png")  # the output of a first run
    todo = plan([str(photos)], photos / "out")
    assert [i.source for i in todo.items + todo.skipped] == [photos / "a.png"]


def test_usage_errors(tmp_path):
    with pytest.raises(PlanError, match="no such file or folder"):
        plan([str(tmp_path / "missing")], tmp_path / "out")
    touch(tmp_path / "empty" / "notes.txt")
    with pytest.raises(PlanError, match="No image files"):
        plan([str(tmp_path / "empty")], tmp_path / "out")
    first, second = touch(tmp_path / "a" / "x.png"), touch(tmp_path / "b" / "x.jpg")
    with pytest.raises(PlanError, match="would both be written"):
        plan([str(first), str(second)], tmp_path / "out")
    with pytest.raises(PlanError, match="overwritten by its own translation"):
        plan([str(first)], first.parent)


def test_errors_that_stop_the_run_and_those_of_one_file():
    assert stops_the_run(Unauthorized(401, "unauthorized", "no key"))
    assert stops_the_run(NotFound(404, "model_not_found", "no model"))
    assert stops_the_run(ConnectionFailed("refused", sent=False))
    assert not stops_the_run(ConnectionFailed("broken", sent=True))
    assert not stops_the_run(QueueFull(429, "queue_full", "full"))
    assert not stops_the_run(NotFound(404, "image_not_found", "gone"))
