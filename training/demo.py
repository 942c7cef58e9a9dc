"""Demo datasets built from real images that ship inside installed packages (no download).

    python -m training.demo edges2photo --out var/datasets/edges2photo [--size 64] [--count 240]

Where the images come from:

- `edges2photo` and `grey2colour` (paired, aligned A|B PNGs in `train/` and `val/`, read by
  `training.data.PairedDataset`): random square crops of the colour photographs bundled with
  scikit-image, in its package folder (`skimage.data`): `astronaut` (NASA, Eileen Collins),
  `coffee` (Rachel Michetti), `chelsea` (the cat Chelsea, Stefan van der Walt), `rocket` (SpaceX
  Falcon 9, NASA), `hubble_deep_field` (NASA/ESA), `immunohistochemistry` (a stained tissue
  section), `retina` (a fundus photograph) and the left view of `stereo_motorcycle` (Middlebury).
  Crops are `count` train and `max(1, count // 15)` val pairs, each taken from a random photo
  at a random position, with a side between a quarter and a half of the photo's shorter side,
  resized to `size` (Lanczos). For `edges2photo`, A is the Canny edge map of the crop's grey
  version (`skimage.feature.canny`, sigma = 1 + size / 128), drawn as black edges on white as in
  pix2pix's edges2shoes; for `grey2colour` A is the crop's luma (ITU-R 601). B is the colour crop.
  The grey A is written as R = G = B, which `PairedDataset` reads as 1 channel. The val crops come
  from the same photos as the train crops (it is a demo, not a benchmark).
- `labels2photo` (paired, same crops): A is a label map in the manner of Cityscapes' labels
  (Isola et al.'s labels -> photo task): every pixel coloured by its k-means colour cluster
  (k = 8, fitted once on pixels of all the photos, so a label means one colour family in every
  crop), drawn in a fixed palette of far-apart colours. The labels are colour clusters, not
  semantic classes; the photo's texture and shading inside a label are what the model learns.
- `digits` (labeled: class sub-folders `0/` ... `9/`, read by `training.data.ImageDataset`):
  scikit-learn's bundled handwritten digits (`sklearn.datasets.load_digits`, the UCI optical
  recognition set: 1797 images of 8x8 pixels, 16 grey levels, 10 classes), white ink on black,
  upsampled (bicubic) to `size` grey PNGs. `count` keeps a random subset.
- `faces` (images: one flat folder, read by `ImageDataset`): the 100 faces of scikit-image's
  `lfw_subset` (25x25 grey crops from Labeled Faces in the Wild; the subset's other 100 images are
  non-face background patches and are left out), resized (bicubic) to `size` grey PNGs.

Builds are deterministic given the seed and take about a second. The folder also gets a hidden
`.ganserve-demo.json` (ignored by the datasets) recording what was built; a folder that has one
is rebuilt in place, any other non-empty folder is refused.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image

MARKER = ".ganserve-demo.json"


@dataclass(frozen=True)
class Demo:
    """A demo dataset: its kind (`paired`, `labeled`, `images`), defaults and builder."""

    kind: str
    size: int
    count: int
    max_count: int | None
    build: Callable[[Path, int, int, np.random.Generator], dict]


# ---------------------------------------------------------------------------------------------
# Sources


def _photo_loaders() -> dict[str, Callable[[], np.ndarray]]:
    """Colour photographs that scikit-image ships in its package folder (no pooch download)."""
    from skimage import data

    return {
        "astronaut": data.astronaut,
        "coffee": data.coffee,
        "chelsea": data.chelsea,
        "rocket": data.rocket,
        "hubble_deep_field": data.hubble_deep_field,
        "immunohistochemistry": data.immunohistochemistry,
        "retina": data.retina,
        "motorcycle_left": lambda: data.stereo_motorcycle()[0],
    }


def _photos() -> dict[str, np.ndarray]:
    """name -> (H, W, 3) uint8 photo, for every bundled photo this installation can load."""
    photos = {}
    for name, load in _photo_loaders().items():
        try:
            pixels = np.asarray(load())
        except (OSError, ValueError, ImportError):  # a trimmed install; pooch never runs for these
            continue
        if pixels.ndim == 3 and pixels.shape[2] >= 3:
            photos[name] = np.ascontiguousarray(pixels[..., :3], dtype=np.uint8)
    if not photos:
        raise RuntimeError("scikit-image's bundled sample photos could not be loaded")
    return photos


def _random_crop(photos: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) uint8: a random square of a random photo, resized."""
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    short = min(h, w)
    side = int(rng.integers(max(8, short // 4), max(8, short // 2) + 1))
    top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    crop = Image.fromarray(photo[top : top + side, left : left + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def _luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 (ITU-R 601-2, as Pillow's convert("L"))."""
    return np.asarray(Image.fromarray(rgb).convert("L"))


def _edges(rgb: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 -> (S, S) uint8 Canny edge map: black edges (0) on white (255)."""
    from skimage.feature import canny

    sigma = 1.0 + rgb.shape[0] / 128
    edges = canny(_luma(rgb) / 255.0, sigma=sigma)  # (S, S) bool
    return np.where(edges, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Builders


def _save(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, optimize=False, compress_level=1)


# Label colours of `labels2photo` (one per colour cluster), far apart like Cityscapes' palette.
LABEL_PALETTE = np.array(
    [
        [128, 64, 128],
        [244, 35, 232],
        [70, 70, 70],
        [102, 102, 156],
        [190, 153, 153],
        [250, 170, 30],
        [107, 142, 35],
        [0, 0, 142],
    ],
    dtype=np.uint8,
)


def _label_maker(photos: list[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A crop -> label map function: k-means colour clusters of all photos, drawn in the palette.

    The clusters (k = 8, scikit-learn's KMeans, fixed seed) are fitted once on 4000 pixels of
    each photo, so a label means the same colour family in every crop, as a class does in a
    semantic label map.
    """
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    pixels = np.concatenate(
        [p.reshape(-1, 3)[rng.integers(0, p.shape[0] * p.shape[1], 4000)] for p in photos]
    ).astype(np.float32)  # (8 * 4000, 3)
    kmeans = KMeans(n_clusters=len(LABEL_PALETTE), n_init=1, random_state=0).fit(pixels)

    def labels(rgb: np.ndarray) -> np.ndarray:
        index = kmeans.predict(rgb.reshape(-1, 3).astype(np.float32))  # (S * S,)
        return LABEL_PALETTE[index].reshape(rgb.shape)  # (S, S, 3)

    return labels


def _build_paired(
    make_a: Callable[[np.ndarray], np.ndarray] | None,
) -> Callable[[Path, int, int, np.random.Generator], dict]:
    def build(out: Path, size: int, count: int, rng: np.random.Generator) -> dict:
        photos = _photos()
        sources = list(photos.values())
        make = make_a if make_a is not None else _label_maker(sources)
        splits = {"train": count, "val": max(1, count // 15)}
        for split, n in splits.items():
            for i in range(n):
                b = _random_crop(sources, size, rng)  # (S, S, 3)
                a = make(b)  # (S, S) grey or (S, S, 3) labels
                if a.ndim == 2:
                    a = np.repeat(a[..., None], 3, axis=2)  # (S, S) -> (S, S, 3), R = G = B
                _save(np.concatenate([a, b], axis=1), out / split / f"{i:04d}.png")  # (S, 2S, 3)
        return {"splits": splits, "sources": sorted(photos)}

    return build


def _build_digits(out: Path, size: int, count: int, rng: np.random.Generator) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.sort(rng.permutation(len(digits.images))[:count])
    for i in keep:
        ink = np.rint(digits.images[i] * (255 / 16)).astype(np.uint8)  # (8, 8), 0..16 -> 0..255
        img = Image.fromarray(ink).resize((size, size), Image.Resampling.BICUBIC)
        _save(np.asarray(img), out / str(digits.target[i]) / f"{i:04d}.png")
    classes = np.bincount(digits.target[keep], minlength=10)
    return {"classes": {str(c): int(n) for c, n in enumerate(classes)}, "source": "load_digits"}


def _build_faces(out: Path, size: int, count: int, rng: np.random.Generator) -> dict:
    from skimage.data import lfw_subset

    faces = np.asarray(lfw_subset())[:100]  # (100, 25, 25): the first 100 are the faces
    if faces.dtype != np.uint8:
        faces = np.rint(np.clip(faces, 0, 1) * 255).astype(np.uint8)
    keep = np.sort(rng.permutation(len(faces))[:count])
    for i in keep:
        img = Image.fromarray(faces[i]).resize((size, size), Image.Resampling.BICUBIC)
        _save(np.asarray(img), out / f"face_{i:03d}.png")
    return {"images": len(keep), "source": "skimage.data.lfw_subset (faces only)"}


DEMOS: dict[str, Demo] = {
    "edges2photo": Demo("paired", 64, 240, None, _build_paired(_edges)),
    "grey2colour": Demo("paired", 64, 240, None, _build_paired(_luma)),
    "labels2photo": Demo("paired", 64, 240, None, _build_paired(None)),
    "digits": Demo("labeled", 32, 1797, 1797, _build_digits),
    "faces": Demo("images", 32, 100, 100, _build_faces),
}


def _prepare_out(out: Path) -> None:
    """Empty `out` if it holds an earlier demo; refuse any other non-empty folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ValueError(f"{out} is not empty and holds no demo dataset; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def build_demo(
    name: str, out: Path, *, size: int | None = None, count: int | None = None, seed: int = 0
) -> Path:
    """Write the demo dataset `name` into the folder `out` and return it (the dataset root).

    `size` is the image side in pixels and `count` the number of (train) images; None takes the
    demo's default. Raises ValueError for an unknown name (listing the valid ones) or a bad size,
    count or folder.
    """
    if name not in DEMOS:
        raise ValueError(f"unknown demo dataset {name!r}; valid names: {', '.join(DEMOS)}")
    demo = DEMOS[name]
    size = demo.size if size is None else size
    count = demo.count if count is None else count
    if not 8 <= size <= 1024:
        raise ValueError(f"size must be between 8 and 1024 pixels, got {size}")
    limit = demo.max_count or 100_000
    if not 1 <= count <= limit:
        raise ValueError(f"count for {name} must be between 1 and {limit}, got {count}")
    out = Path(out)
    _prepare_out(out)
    details = demo.build(out, size, count, np.random.default_rng(seed))
    record = {"name": name, "kind": demo.kind, "size": size, "count": count, "seed": seed}
    (out / MARKER).write_text(json.dumps(record | details, indent=2) + "\n")
    return out


# ---------------------------------------------------------------------------------------------
# Command line

app = typer.Typer(
    add_completion=False, help="Build a demo dataset from images shipped in packages."
)


@app.command()
def main(
    name: Annotated[str, typer.Argument(help=f"Which demo: {', '.join(DEMOS)}.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the dataset into.")],
    size: Annotated[int | None, typer.Option(help="Image side in pixels.")] = None,
    count: Annotated[int | None, typer.Option(help="Number of (train) images.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (crops, subsets).")] = 0,
) -> None:
    """Build the demo dataset NAME into --out."""
    try:
        root = build_demo(name, out, size=size, count=count, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    record = json.loads((root / MARKER).read_text())
    typer.echo(f"{name} ({record['kind']}) written to {root}")


if __name__ == "__main__":
    app()
