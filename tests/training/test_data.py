"""`training.data`: paired and image-folder datasets read from real image files."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training import data
from training.data import (
    BadImageWarning,
    DatasetError,
    DatasetWarning,
    ImageDataset,
    PairedDataset,
    collate,
)


def noise(seed: int, h: int, w: int, channels: int = 3) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    return pixels[..., 0] if channels == 1 else pixels


def save(pixels: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)
    return path


def save_aligned(a: np.ndarray, b: np.ndarray, path: Path) -> Path:
    return save(np.concatenate([a, b], axis=1), path)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(C, S, S) in [-1, 1] -> (S, S, C) uint8, exactly inverting the dataset's scaling."""
    return ((x + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def write_bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good_for_truncation.png"
    save(noise(9, 16, 16), good)
    truncated = folder / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:300])
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    text = folder / "text.png"
    text.write_text("this is not an image\n")
    good.unlink()
    return {"truncated": truncated, "empty": empty, "text": text}


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    assert [str(w.message) for w in caught] == []


# ---------------------------------------------------------------------------------------------
# PairedDataset: layouts


def test_aligned_layout_in_split_folder(tmp_path, no_warnings):
    for i in range(3):
        save_aligned(noise(i, 20, 20), noise(10 + i, 20, 20), tmp_path / "train" / f"{i}.png")
    save_aligned(noise(5, 20, 20), noise(6, 20, 20), tmp_path / "val" / "v.png")
    ds = PairedDataset(tmp_path, image_size=16, load_size=20)
    assert (len(ds), ds.names, ds.layout) == (3, ["0.png", "1.png", "2.png"], "aligned")
    assert (ds.channels_a, ds.channels_b, ds.image_size) == (3, 3, 16)
    item = ds.get(0, gen(0))
    assert item["A"].shape == (3, 16, 16) and item["B"].shape == (3, 16, 16)
    assert item["A"].dtype == torch.float32
    assert item["A"].min() >= -1 and item["B"].max() <= 1
    assert len(PairedDataset(tmp_path, image_size=16, split="val")) == 1


def test_aligned_halves_are_left_a_and_right_b(tmp_path):
    a, b = noise(1, 16, 16), noise(2, 16, 16)
    save_aligned(a, b, tmp_path / "train" / "x.png")
    ds = PairedDataset(tmp_path, image_size=16, augment=False)
    assert ds.load_size == 16
    item = ds.get(0, gen(0))
    assert np.array_equal(to_uint8(item["A"]), a)
    assert np.array_equal(to_uint8(item["B"]), b)


def test_aligned_files_directly_in_root(tmp_path):
    save_aligned(noise(1, 8, 8), noise(2, 8, 8), tmp_path / "x.png")
    ds = PairedDataset(tmp_path, image_size=8, split="val")
    assert ds.names == ["x.png"]


def test_missing_split_names_the_splits_found(tmp_path):
    save_aligned(noise(1, 8, 8), noise(2, 8, 8), tmp_path / "train" / "x.png")
    with pytest.raises(DatasetError, match=r"no 'val' split.*found: train"):
        PairedDataset(tmp_path, image_size=8, split="val")


def test_default_load_size_is_the_papers_jitter(tmp_path):
    save_aligned(noise(1, 8, 8), noise(2, 8, 8), tmp_path / "x.png")
    assert PairedDataset(tmp_path, image_size=256).load_size == 286
    assert PairedDataset(tmp_path, image_size=64).load_size == 71
    assert PairedDataset(tmp_path, image_size=64, augment=False).load_size == 64
    with pytest.raises(ValueError, match="load_size"):
        PairedDataset(tmp_path, image_size=64, load_size=32)


def test_a_b_folders_match_stems_and_warn_about_the_rest(tmp_path):
    for stem in ("p", "q"):
        save(noise(1, 12, 12), tmp_path / "A" / f"{stem}.png")
        save(noise(2, 10, 14), tmp_path / "B" / f"{stem}.jpg")  # other extension, other size
    save(noise(3, 12, 12), tmp_path / "A" / "only_a.png")
    save(noise(4, 12, 12), tmp_path / "B" / "only_b.png")
    with pytest.warns(DatasetWarning) as record:
        ds = PairedDataset(tmp_path, image_size=8, load_size=10)
    messages = " ".join(str(w.message) for w in record)
    assert "only_a.png" in messages and "only_b.png" in messages
    assert (ds.layout, ds.names, len(ds)) == ("folders", ["p.png", "q.png"], 2)
    assert ds.get(1, gen(0))["B"].shape == (3, 8, 8)


@pytest.mark.parametrize("layout", ["A/train", "train/A"])
def test_a_b_folders_with_splits(tmp_path, layout):
    for split, n in (("train", 3), ("val", 1)):
        for side in "AB":
            folder = tmp_path / layout.replace("A", side).replace("train", split)
            for i in range(n):
                save(noise(i, 8, 8), folder / f"{i}.png")
    assert len(PairedDataset(tmp_path, image_size=8)) == 3
    assert len(PairedDataset(tmp_path, image_size=8, split="val")) == 1


def test_a_without_b_is_explained(tmp_path):
    save(noise(1, 8, 8), tmp_path / "A" / "x.png")
    with pytest.raises(DatasetError, match="folder A/ but no folder B/"):
        PairedDataset(tmp_path, image_size=8)


def test_a_b_folders_with_no_common_name(tmp_path):
    save(noise(1, 8, 8), tmp_path / "A" / "x.png")
    save(noise(1, 8, 8), tmp_path / "B" / "y.png")
    with pytest.warns(DatasetWarning), pytest.raises(DatasetError, match="no file name"):
        PairedDataset(tmp_path, image_size=8)


# ---------------------------------------------------------------------------------------------
# PairedDataset: channels and direction


def test_grey_to_colour_folders_give_one_and_three_channels(tmp_path):
    grey, colour = noise(1, 8, 8, channels=1), noise(2, 8, 8)
    save(grey, tmp_path / "A" / "x.png")
    save(colour, tmp_path / "B" / "x.png")
    ds = PairedDataset(tmp_path, image_size=8, augment=False)
    assert (ds.channels_a, ds.channels_b) == (1, 3)
    item = ds.get(0, gen(0))
    assert np.array_equal(to_uint8(item["A"])[..., 0], grey)
    assert np.array_equal(to_uint8(item["B"]), colour)

    swapped = PairedDataset(tmp_path, image_size=8, augment=False, direction="BtoA")
    assert (swapped.channels_a, swapped.channels_b) == (3, 1)
    item_ba = swapped.get(0, gen(0))
    assert torch.equal(item_ba["A"], item["B"]) and torch.equal(item_ba["B"], item["A"])


def test_aligned_grey_half_beside_colour_half_is_one_channel(tmp_path):
    grey = noise(1, 8, 8, channels=1)
    save_aligned(np.repeat(grey[..., None], 3, axis=2), noise(2, 8, 8), tmp_path / "x.png")
    ds = PairedDataset(tmp_path, image_size=8, augment=False)
    assert (ds.channels_a, ds.channels_b) == (1, 3)
    assert np.array_equal(to_uint8(ds.get(0, gen(0))["A"])[..., 0], grey)


def test_one_colour_image_makes_the_side_colour(tmp_path):
    save(noise(1, 8, 8, channels=1), tmp_path / "A" / "grey.png")
    save(noise(2, 8, 8), tmp_path / "A" / "rgb.png")
    for stem in ("grey", "rgb"):
        save(noise(3, 8, 8, channels=1), tmp_path / "B" / f"{stem}.png")
    ds = PairedDataset(tmp_path, image_size=8)
    assert (ds.channels_a, ds.channels_b) == (3, 1)
    a = ds.get(0, gen(0))["A"]  # the grey image, repeated over R, G, B
    assert torch.equal(a[0], a[1]) and torch.equal(a[0], a[2])


def test_direction_is_checked(tmp_path):
    with pytest.raises(ValueError, match="direction"):
        PairedDataset(tmp_path, image_size=8, direction="AtoC")


# ---------------------------------------------------------------------------------------------
# PairedDataset: jitter


def test_get_is_deterministic_given_the_rng(tmp_path):
    for i in range(2):
        save_aligned(noise(i, 24, 24), noise(i + 5, 24, 24), tmp_path / f"{i}.png")
    ds = PairedDataset(tmp_path, image_size=16)
    for seed in range(5):
        first, second = ds.get(1, gen(seed)), ds.get(1, gen(seed))
        assert torch.equal(first["A"], second["A"]) and torch.equal(first["B"], second["B"])
    variants = {ds.get(1, gen(seed))["A"].numpy().tobytes() for seed in range(10)}
    assert len(variants) > 1


def test_crop_and_flip_are_the_same_for_a_and_b(tmp_path):
    pixels = noise(3, 20, 20)
    save_aligned(pixels, pixels, tmp_path / "x.png")  # B = A
    ds = PairedDataset(tmp_path, image_size=12, load_size=20)
    seen = set()
    for seed in range(40):
        item = ds.get(0, gen(seed))
        assert torch.equal(item["A"], item["B"])
        out = to_uint8(item["A"])
        for flipped, source in ((False, pixels), (True, pixels[:, ::-1])):
            for top in range(9):
                for left in range(9):
                    if np.array_equal(out, source[top : top + 12, left : left + 12]):
                        seen.add((flipped, top, left))
    assert {flipped for flipped, _, _ in seen} == {False, True}  # both flips occur
    assert len(seen) > 10  # and many crop positions


def test_no_augment_takes_the_centre_and_draws_nothing(tmp_path):
    pixels = noise(3, 20, 20)
    save_aligned(pixels, pixels, tmp_path / "x.png")
    ds = PairedDataset(tmp_path, image_size=12, load_size=20, augment=False)
    rng = gen(0)
    state = rng.get_state()
    assert np.array_equal(to_uint8(ds.get(0, rng)["A"]), pixels[4:16, 4:16])
    assert torch.equal(rng.get_state(), state)


# ---------------------------------------------------------------------------------------------
# ImageDataset


def test_flat_folder_is_unconditional(tmp_path, no_warnings):
    for name in ("b.png", "a.jpg", "c.bmp"):
        save(noise(len(name), 10, 10), tmp_path / name)
    ds = ImageDataset(tmp_path, image_size=8)
    assert (len(ds), ds.names, ds.num_classes, ds.class_names) == (
        3,
        ["a.jpg", "b.png", "c.bmp"],
        0,
        [],
    )
    item = ds.get(2, gen(0))
    assert item["x"].shape == (3, 8, 8) and item["x"].dtype == torch.float32
    assert item["y"].shape == () and item["y"].dtype == torch.long and item["y"] == 0


def test_class_folders_are_conditional(tmp_path):
    counts = {"zebra": 2, "cat": 3, "dog": 1}
    for cls, n in counts.items():
        for i in range(n):
            save(noise(i, 8, 8, channels=1), tmp_path / cls / f"{i}.png")
    (tmp_path / "notes").mkdir()  # a folder without images is not a class
    ds = ImageDataset(tmp_path, image_size=8)
    assert (ds.num_classes, ds.class_names, ds.channels) == (3, ["cat", "dog", "zebra"], 1)
    assert ds.names[:3] == ["cat/0.png", "cat/1.png", "cat/2.png"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 2, 2]
    assert [int(ds.get(i, gen(0))["y"]) for i in range(len(ds))] == [0, 0, 0, 1, 2, 2]


def test_unconditional_override_gathers_every_class_folder(tmp_path):
    for cls in ("a", "b"):
        for i in range(2):
            save(noise(i, 8, 8), tmp_path / cls / "nested" / f"{i}.png")
    ds = ImageDataset(tmp_path, image_size=8, conditional=False)
    assert (len(ds), ds.num_classes, ds.class_names) == (4, 0, [])
    assert ds.names[0] == "a/nested/0.png"
    assert ds.labels.tolist() == [0, 0, 0, 0]


def test_conditional_on_a_flat_folder_is_an_error(tmp_path):
    save(noise(1, 8, 8), tmp_path / "x.png")
    with pytest.raises(DatasetError, match="one sub-folder of images per class"):
        ImageDataset(tmp_path, image_size=8, conditional=True)


def test_images_beside_class_folders_make_it_unconditional(tmp_path):
    save(noise(1, 8, 8), tmp_path / "x.png")
    save(noise(2, 8, 8), tmp_path / "cls" / "y.png")
    assert len(ImageDataset(tmp_path, image_size=8)) == 2
    with pytest.warns(DatasetWarning, match=r"x\.png: not inside a class"):
        ds = ImageDataset(tmp_path, image_size=8, conditional=True)
    assert (len(ds), ds.class_names) == (1, ["cls"])


def test_channel_inference_and_override(tmp_path):
    save(noise(1, 8, 8, channels=1), tmp_path / "grey" / "g.png")
    save(noise(1, 8, 8), tmp_path / "mixed" / "c.png")
    save(noise(2, 8, 8, channels=1), tmp_path / "mixed" / "g.png")
    assert ImageDataset(tmp_path / "grey", image_size=8).channels == 1
    assert ImageDataset(tmp_path / "mixed", image_size=8).channels == 3
    forced = ImageDataset(tmp_path / "grey", image_size=8, channels=3)
    x = forced.get(0, gen(0))["x"]
    assert x.shape == (3, 8, 8) and torch.equal(x[0], x[2])
    assert ImageDataset(tmp_path / "mixed", image_size=8, channels=1).get(0, gen(0))["x"].shape == (
        1,
        8,
        8,
    )
    with pytest.raises(ValueError, match="channels"):
        ImageDataset(tmp_path / "grey", image_size=8, channels=2)


def test_other_modes_are_converted(tmp_path):
    rgba = np.dstack([noise(1, 8, 8), np.full((8, 8), 128, np.uint8)])
    save(rgba, tmp_path / "rgba" / "x.png")
    Image.fromarray(noise(2, 8, 8)).convert("P").save(tmp_path / "rgba" / "p.gif")
    save(noise(3, 8, 8, channels=1) > 128, tmp_path / "grey" / "bits.png")  # mode "1"
    la = np.dstack([noise(4, 8, 8, channels=1), np.full((8, 8), 255, np.uint8)])
    save(la, tmp_path / "grey" / "la.png")
    assert ImageDataset(tmp_path / "rgba", image_size=8).channels == 3
    grey = ImageDataset(tmp_path / "grey", image_size=8)
    assert grey.channels == 1
    bits = to_uint8(grey.get(0, gen(0))["x"])
    assert set(np.unique(bits)) <= {0, 255}


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100], [32896, 65535]], dtype=np.uint16)
    save(values, tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    ds = ImageDataset(tmp_path, image_size=2)
    assert ds.channels == 1
    assert to_uint8(ds.get(0, gen(0))["x"])[..., 0].tolist() == [[0, 100], [128, 255]]


def test_non_square_images_are_centre_cropped(tmp_path):
    pixels = np.zeros((8, 16), np.uint8)
    pixels[:, 4:12] = 255  # the centre square is white, the sides black
    save(pixels, tmp_path / "wide.png")
    x = ImageDataset(tmp_path, image_size=8).get(0, gen(0))["x"]
    assert torch.all(x == 1)


def test_mirror_flips_from_the_rng_only(tmp_path):
    pixels = noise(1, 8, 8)
    save(pixels, tmp_path / "x.png")
    plain = ImageDataset(tmp_path, image_size=8)
    rng = gen(0)
    state = rng.get_state()
    plain.get(0, rng)
    assert torch.equal(rng.get_state(), state)
    mirrored = ImageDataset(tmp_path, image_size=8, mirror=True)
    outs = [to_uint8(mirrored.get(0, gen(seed))["x"]) for seed in range(20)]
    assert any(np.array_equal(o, pixels) for o in outs)
    assert any(np.array_equal(o, pixels[:, ::-1]) for o in outs)
    for seed in range(5):
        assert torch.equal(mirrored.get(0, gen(seed))["x"], mirrored.get(0, gen(seed))["x"])


# ---------------------------------------------------------------------------------------------
# Bad, hidden and missing files


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path):
    bad = write_bad_files(tmp_path)
    save(noise(1, 8, 8), tmp_path / "ok1.png")
    save(noise(2, 8, 8), tmp_path / "ok2.jpg")
    with pytest.warns(BadImageWarning) as record:
        ds = ImageDataset(tmp_path, image_size=8)
    assert ds.names == ["ok1.png", "ok2.jpg"]
    messages = [str(w.message) for w in record if issubclass(w.category, BadImageWarning)]
    assert len(messages) == 3
    for kind, path in bad.items():
        (message,) = [m for m in messages if str(path) in m]
        assert {"truncated": "cannot decode", "empty": "0 bytes", "text": "not an image"}[
            kind
        ] in message


def test_bad_files_in_pairs_are_skipped(tmp_path):
    bad = write_bad_files(tmp_path / "train")
    save_aligned(noise(1, 8, 8), noise(2, 8, 8), tmp_path / "train" / "ok.png")
    save(noise(1, 8, 1), tmp_path / "train" / "narrow.png")
    with pytest.warns(BadImageWarning) as record:
        ds = PairedDataset(tmp_path, image_size=8)
    assert ds.names == ["ok.png"]
    messages = " ".join(str(w.message) for w in record)
    assert all(str(path) in messages for path in bad.values())
    assert "narrow.png" in messages and "too narrow" in messages


def test_hidden_files_are_ignored_silently_and_others_warned(tmp_path, recwarn):
    save(noise(1, 8, 8), tmp_path / "ok.png")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01junk")
    (tmp_path / "._ok.png").write_bytes(b"resource fork")
    save(noise(2, 8, 8), tmp_path / ".hidden_dir" / "x.png")
    (tmp_path / "README.txt").write_text("my dataset\n")
    ds = ImageDataset(tmp_path, image_size=8)
    assert ds.names == ["ok.png"]
    messages = [str(w.message) for w in recwarn]
    assert len(messages) == 1 and "README.txt" in messages[0]


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_PIXELS", 100)
    save(noise(1, 8, 8), tmp_path / "small.png")
    save(noise(2, 11, 10), tmp_path / "big.png")
    with pytest.warns(BadImageWarning, match=r"big\.png: 10x11 is over the limit"):
        ds = ImageDataset(tmp_path, image_size=8)
    assert ds.names == ["small.png"]


def test_many_files_load_in_sorted_order_with_ordered_warnings(tmp_path):
    for i in range(30):
        save(noise(i, 8, 8), tmp_path / f"{i:02d}.png")
    for i in (3, 17):
        (tmp_path / f"{i:02d}.png").write_bytes(b"")
    with pytest.warns(BadImageWarning) as record:
        ds = ImageDataset(tmp_path, image_size=8)
    assert ds.names == [f"{i:02d}.png" for i in range(30) if i not in (3, 17)]
    assert [Path(str(w.message).split(": ")[0].removeprefix("skipped ")).name for w in record] == [
        "03.png",
        "17.png",
    ]
    x = ds.get(4, gen(0))["x"]  # 05.png
    assert np.array_equal(to_uint8(x), noise(5, 8, 8))


def test_only_bad_files_is_a_dataset_error(tmp_path):
    write_bad_files(tmp_path)
    with (
        pytest.warns(BadImageWarning),
        pytest.raises(DatasetError, match=r"no usable image in .*all 3 image files were unread"),
    ):
        ImageDataset(tmp_path, image_size=8)
    write_bad_files(tmp_path / "train")
    with pytest.warns(BadImageWarning), pytest.raises(DatasetError, match="aligned A|B"):
        PairedDataset(tmp_path, image_size=8)


def test_empty_folder_is_a_dataset_error_naming_the_layout_not_where_it_lies(tmp_path):
    """A training job shows the message to the dataset's uploader: folders are named by their
    paths inside the dataset, never by where it is stored."""
    with pytest.raises(DatasetError) as info:
        ImageDataset(tmp_path, image_size=8)
    assert "sub-folder of images per class" in str(info.value)
    assert str(tmp_path) not in str(info.value)
    with pytest.raises(DatasetError) as info:
        PairedDataset(tmp_path, image_size=8)
    assert "A|B" in str(info.value) and "matching names" in str(info.value)
    assert "train/" in str(info.value) and str(tmp_path) not in str(info.value)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "bad.png").write_bytes(b"not a png")
    with pytest.warns(BadImageWarning), pytest.raises(DatasetError) as info:
        PairedDataset(tmp_path, image_size=8)
    assert "no usable aligned A|B image in train/" in str(info.value)
    assert str(tmp_path) not in str(info.value)


def test_missing_root_is_a_dataset_error(tmp_path):
    for make in (ImageDataset, PairedDataset):
        with pytest.raises(DatasetError, match=r"nowhere does not exist"):
            make(tmp_path / "nowhere", image_size=8)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        ImageDataset(tmp_path / "file", image_size=8)


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)
    assert issubclass(BadImageWarning, UserWarning)


# ---------------------------------------------------------------------------------------------
# collate


def test_collate_stacks_each_key(tmp_path):
    for i in range(3):
        save(noise(i, 8, 8), tmp_path / "c" / f"{i}.png")
    ds = ImageDataset(tmp_path, image_size=8)
    batch = collate([ds.get(i, gen(i)) for i in range(3)])
    assert batch["x"].shape == (3, 3, 8, 8) and batch["y"].shape == (3,)
    assert batch["y"].dtype == torch.long
    with pytest.raises(ValueError, match="empty"):
        collate([])
