"""Datasets for the training loop: paired images (pix2pix) and image folders (U-Net GAN, PGGAN).

`PairedDataset` reads the two layouts of pix2pix (Isola et al., "Image-to-Image Translation with
Conditional Adversarial Networks", CVPR 2017) and applies its random jitter: both sides are resized
to `load_size` (286 for 256-pixel training), then the same random `image_size` crop and the same
random horizontal flip are applied to A and B.

`ImageDataset` reads a folder of images (unconditional) or one sub-folder per class
(class-conditional), as U-Net GAN (Schonfeld et al. 2020) and Progressive GAN (Karras et al. 2018)
train on.

Every image is decoded and resized once, when the dataset is built, and kept in memory as a uint8
tensor, so an iteration only crops, flips and scales to [-1, 1]. The memory cost is N x C x L x L
bytes per side (L = load_size for pairs, image_size for image sets): 400 RGB pairs at 286 px take
400 x 2 x 3 x 286^2 = 196 MB; 70,000 RGB images at 128 px take 3.4 GB (about twice that at the peak
while building). Decoding runs in a small thread pool (Pillow releases the GIL); the result does
not depend on thread timing. A multi-process DataLoader is not needed (nor used).

Robustness: files are visited in sorted order; hidden files and folders (names starting with ".")
are ignored silently; a file that Pillow cannot open or fully decode (not an image, truncated,
empty, over `MAX_PIXELS`) and a file without an image extension are skipped with a
`BadImageWarning` naming the file and the reason. A dataset with no usable image, or a root that
does not exist, raises `DatasetError` naming the layout expected and the folders by their paths
inside the dataset (`train/`, `A/`), never by where the dataset is stored: a training job shows
the message to whoever uploaded the dataset.

Channels: a side (or an image set) is stored with 1 channel when every image of it is greyscale
(Pillow modes "1", "L", "LA", "I", "I;16", "F"), else with 3 (RGB; RGBA, P, CMYK... are converted,
greyscale images are repeated over the 3 channels). An aligned A|B file has one mode for both
halves, so there a half whose R, G and B are equal everywhere also counts as greyscale (a grey A
beside a colour B gives 1 and 3 channels).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps

from core.datasets import IMAGE_EXTENSIONS, SPLIT_NAMES
from core.storage import GREY_MODES
from models.images import dequantize

Batch = dict[str, torch.Tensor]

MAX_PIXELS = 8192 * 8192  # larger images are refused as possible decompression bombs
_DECODE_THREADS = min(8, os.cpu_count() or 1)

T = TypeVar("T")
R = TypeVar("R")


class DatasetError(ValueError):
    """A dataset that cannot be used; the message says what is wrong, naming folders by their
    paths inside the dataset."""


class DatasetWarning(UserWarning):
    """Something in a dataset was skipped (the message says what and why)."""


class BadImageWarning(DatasetWarning):
    """An image file that could not be read was skipped."""


class _BadImage(Exception):
    """Raised inside decoding: `path` cannot be used, for `reason`."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"skipped {path}: {reason}")
        self.path = path
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Listing files


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _list_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Non-hidden files under `folder` (not inside hidden folders), sorted by relative path."""
    if not recursive:
        files = [p for p in folder.iterdir() if p.is_file() and not _is_hidden(p)]
        return sorted(files)
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _is_hidden(p))


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _image_files(files: Iterable[Path]) -> list[Path]:
    """The files with an image extension; the others are skipped with a warning."""
    images = []
    for path in files:
        if _is_image_name(path):
            images.append(path)
        else:
            _warn(f"skipped {path}: not an image file (extension {path.suffix or 'none'!r})")
    return images


def _has_images(folder: Path, *, recursive: bool = False) -> bool:
    return any(_is_image_name(p) for p in _list_files(folder, recursive=recursive))


def _warn(message: str, category: type[Warning] = BadImageWarning) -> None:
    warnings.warn(message, category, stacklevel=3)


def _check_root(root: Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"the dataset folder {root.name} does not exist")
    if not root.is_dir():
        raise DatasetError(f"the dataset path {root.name} is not a folder")
    return root


def _inside(path: Path, root: Path) -> str:
    """A folder as the dataset names it: `train/A/` relative to its root, "the dataset's top
    folder" for the root itself."""
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        return f"{path.name}/"
    return "the dataset's top folder" if relative == "." else f"{relative}/"


# ---------------------------------------------------------------------------------------------
# Decoding


def _grey_pixels(img: Image.Image) -> np.ndarray:
    """(H, W) uint8 of a greyscale image; 16-bit and float images are scaled, not clipped."""
    if img.mode in ("1", "L", "LA", "La"):
        return np.asarray(img.convert("L"))
    values = np.asarray(img, dtype=np.float64)  # modes I, I;16*, F
    if img.mode == "F":
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
    elif img.mode.startswith("I;16") or (values.size and values.max() > 255):
        scale = 255.0 / 65535.0
    else:
        scale = 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def _decode(path: Path) -> np.ndarray:
    """The pixels of `path`: (H, W) uint8 when greyscale, else (H, W, 3) uint8 RGB.

    Raises _BadImage when Pillow cannot open or fully decode the file; any exception from Pillow
    counts, since the bytes of a dataset are untrusted input.
    """
    try:
        if path.stat().st_size == 0:
            raise _BadImage(path, "empty file (0 bytes)")
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise _BadImage(path, f"{width}x{height} is over the limit of {MAX_PIXELS} pixels")
            img.load()  # decodes every byte: raises on truncated data
            img = ImageOps.exif_transpose(img)
            if img.mode in GREY_MODES:
                return _grey_pixels(img)
            return np.asarray(img.convert("RGB"))
    except _BadImage:
        raise
    except Image.UnidentifiedImageError:
        raise _BadImage(path, "not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise _BadImage(path, f"refused as a decompression bomb ({exc})") from None
    except Exception as exc:
        raise _BadImage(path, f"cannot decode ({type(exc).__name__}: {exc})") from None


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """(H, W[, 3]) -> (size, size[, 3]) uint8, bicubic."""
    if pixels.shape[:2] == (size, size):
        return pixels
    img = Image.fromarray(pixels)
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC))


def _centre_square(pixels: np.ndarray) -> np.ndarray:
    """(H, W[, 3]) -> (M, M[, 3]) with M = min(H, W), the centre of the image."""
    h, w = pixels.shape[:2]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    return pixels[top : top + m, left : left + m]


def _grey_if_equal(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) whose channels are all equal -> (H, W); anything else unchanged."""
    grey = pixels.ndim == 3 and bool((pixels == pixels[..., :1]).all())  # (H, W, 3) vs (H, W, 1)
    return pixels[..., 0] if grey else pixels


def _decode_all(items: list[T], fn: Callable[[T], R]) -> list[R | None]:
    """fn over items in a thread pool; None (and a warning, in item order) where a file is bad."""

    def attempt(item: T) -> R | _BadImage:
        try:
            return fn(item)
        except _BadImage as bad:
            return bad

    with warnings.catch_warnings():
        # Our own MAX_PIXELS check reports large images; Pillow's warning would be a duplicate.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        if len(items) < 16 or _DECODE_THREADS == 1:
            results = [attempt(item) for item in items]
        else:
            with ThreadPoolExecutor(_DECODE_THREADS) as pool:
                results = list(pool.map(attempt, items))
    out: list[R | None] = []
    for result in results:
        if isinstance(result, _BadImage):
            _warn(str(result))
            out.append(None)
        else:
            out.append(result)
    return out


def _infer_channels(images: list[np.ndarray]) -> int:
    """1 when every image is greyscale (2-D), else 3."""
    return 1 if all(p.ndim == 2 for p in images) else 3


def _stack(images: list[np.ndarray], channels: int) -> torch.Tensor:
    """N x (S, S[, 3]) uint8 -> (N, channels, S, S) uint8 tensor."""
    n, (h, w) = len(images), images[0].shape[:2]
    out = np.empty((n, channels, h, w), dtype=np.uint8)  # (N, C, S, S)
    for i, pixels in enumerate(images):
        if pixels.ndim == 2:
            out[i] = pixels[None]  # grey (S, S): broadcast over 1 or 3 channels
        elif channels == 3:
            out[i] = pixels.transpose(2, 0, 1)  # (S, S, 3) -> (3, S, S)
        else:
            out[i, 0] = np.asarray(Image.fromarray(pixels).convert("L"))  # ITU-R 601 luma
    return torch.from_numpy(out)


def _random_flip(rng: torch.Generator) -> bool:
    return bool(torch.rand(1, generator=rng).item() < 0.5)


# ---------------------------------------------------------------------------------------------
# Paired images (pix2pix)


class PairedDataset:
    """Paired images A -> B for pix2pix, decoded once into memory.

    Layouts (checked in this order):

    - folders: matching file stems in `root/A/<split>/` and `root/B/<split>/`, or in
      `root/<split>/A/` and `root/<split>/B/`, or (no split folders) in `root/A/` and `root/B/`
      directly. Extensions may differ (`A/x.jpg` pairs with `B/x.png`); a name found on one side
      only is warned about and skipped.
    - aligned: files holding A | B side by side (left half A, right half B) in `root/<split>/`,
      or directly in `root` when it holds images and has no train/val/test folder.

    Without split folders every split reads the same images. Each side is resized (bicubic) to
    `load_size` (default `image_size * 286 // 256` when augmenting, the paper's jitter, else
    `image_size`). `get` crops `image_size` at random and flips at random, the same for A and B,
    when `augment` (else it takes the centre crop). `direction="BtoA"` swaps A and B, so that "A"
    is always the generator's input.

    Attributes: `root`, `layout` ("aligned" or "folders"), `names` (A-side file names),
    `image_size`, `load_size`, `channels_a`, `channels_b`, `augment`, `direction`, `split`.
    """

    def __init__(
        self,
        root: Path,
        *,
        image_size: int,
        load_size: int | None = None,
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        split: str = "train",
        augment: bool = True,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be 'AtoB' or 'BtoA', not {direction!r}")
        if load_size is None:
            load_size = image_size * 286 // 256 if augment else image_size
        if image_size < 1 or load_size < image_size:
            raise ValueError(f"need 1 <= image_size <= load_size, got {image_size}, {load_size}")
        self.root = _check_root(root)
        self.image_size, self.load_size = image_size, load_size
        self.direction, self.split, self.augment = direction, split, augment

        folders = self._find_folders()
        if folders is not None:
            self.layout = "folders"
            names, sides = self._load_folders(*folders)
        else:
            self.layout = "aligned"
            names, sides = self._load_aligned(self._find_aligned())
        if direction == "BtoA":
            sides = (sides[1], sides[0])
        self.names = names
        self.channels_a = _infer_channels(sides[0])
        self.channels_b = _infer_channels(sides[1])
        self._a = _stack(sides[0], self.channels_a)  # (N, Ca, L, L) uint8
        self._b = _stack(sides[1], self.channels_b)  # (N, Cb, L, L) uint8

    def __len__(self) -> int:
        return len(self.names)

    def get(self, index: int, rng: torch.Generator) -> Batch:
        """{"A": (Ca, S, S), "B": (Cb, S, S)} float in [-1, 1]; jitter drawn from `rng` only.

        With `augment`, draws the crop's top, then its left, then the flip (p = 0.5).
        """
        a, b = self._a[index], self._b[index]  # (C, L, L) uint8
        size, load = self.image_size, self.load_size
        if self.augment:
            top = int(torch.randint(0, load - size + 1, (1,), generator=rng).item())
            left = int(torch.randint(0, load - size + 1, (1,), generator=rng).item())
            flip = _random_flip(rng)
        else:
            top = left = (load - size) // 2
            flip = False
        a = a[:, top : top + size, left : left + size]  # (Ca, S, S)
        b = b[:, top : top + size, left : left + size]  # (Cb, S, S)
        if flip:
            a, b = a.flip(-1), b.flip(-1)
        return {"A": dequantize(a), "B": dequantize(b)}

    # -- layout discovery ----------------------------------------------------------------------

    def _find_folders(self) -> tuple[Path, Path] | None:
        """The (A, B) folders of the folders layout, or None when the layout is aligned."""
        root, split = self.root, self.split
        for a, b in (
            (root / "A" / split, root / "B" / split),
            (root / split / "A", root / split / "B"),
        ):
            if a.is_dir() and b.is_dir():
                return a, b
        a, b = root / "A", root / "B"
        if a.is_dir() != b.is_dir():
            have, lack = ("A", "B") if a.is_dir() else ("B", "A")
            raise DatasetError(f"the dataset has a folder {have}/ but no folder {lack}/ beside it")
        if not a.is_dir():
            return None
        if any((a / s).is_dir() for s in SPLIT_NAMES):
            found = sorted(s for s in SPLIT_NAMES if (a / s).is_dir() and (b / s).is_dir())
            raise DatasetError(
                f"the dataset has no {split!r} split in A/ and B/ "
                f"(found: {', '.join(found) or 'none'})"
            )
        return a, b

    def _find_aligned(self) -> Path:
        root, split = self.root, self.split
        if (root / split).is_dir():
            return root / split
        splits = [s for s in SPLIT_NAMES if (root / s).is_dir()]
        if splits:
            raise DatasetError(
                f"the dataset has no {split!r} split folder (found: {', '.join(splits)})"
            )
        if _has_images(root):
            return root
        raise DatasetError(self._layout_help("the dataset holds no paired images"))

    def _layout_help(self, problem: str) -> str:
        split = self.split
        return (
            f"{problem}: expected aligned A|B image files (A on the left half, B on the right) "
            f"in {split}/ or directly in the dataset's top folder, or files with matching names "
            f"in A/ and B/ (optionally in {split}/ sub-folders of each)"
        )

    # -- loading ---------------------------------------------------------------------------

    def _load_aligned(self, folder: Path) -> tuple[list[str], tuple[list, list]]:
        files = _image_files(_list_files(folder))
        halves = _decode_all(files, self._read_aligned)
        kept = [(f, h) for f, h in zip(files, halves, strict=True) if h is not None]
        if not kept:
            problem = f"no usable aligned A|B image in {_inside(folder, self.root)}"
            if files:
                problem += f" (all {len(files)} image files were unreadable, see the warnings)"
            raise DatasetError(self._layout_help(problem))
        names = [f.name for f, _ in kept]
        return names, ([h[0] for _, h in kept], [h[1] for _, h in kept])

    def _read_aligned(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        pixels = _decode(path)  # (H, W[, 3])
        width = pixels.shape[1]
        if width < 2:
            raise _BadImage(path, f"{width} pixel wide: too narrow to hold A|B halves")
        half = width // 2
        a, b = pixels[:, :half], pixels[:, half:]  # left A, right B (B takes an odd column)
        return (
            _grey_if_equal(_resize(a, self.load_size)),
            _grey_if_equal(_resize(b, self.load_size)),
        )

    def _load_folders(self, a_dir: Path, b_dir: Path) -> tuple[list[str], tuple[list, list]]:
        a_files, b_files = _by_stem(a_dir), _by_stem(b_dir)
        for stem in sorted(a_files.keys() ^ b_files.keys()):
            only, other = (a_files, b_dir) if stem in a_files else (b_files, a_dir)
            _warn(f"skipped {only[stem]}: no file named {stem}.* in {other}", DatasetWarning)
        pairs = [(a_files[s], b_files[s]) for s in sorted(a_files.keys() & b_files.keys())]
        decoded = _decode_all(pairs, self._read_pair)
        kept = [(p, d) for p, d in zip(pairs, decoded, strict=True) if d is not None]
        if not kept:
            problem = (
                f"no usable pair of images in {_inside(a_dir, self.root)} and "
                f"{_inside(b_dir, self.root)}"
            )
            if pairs:
                problem += " (every matching pair had an unreadable file, see the warnings)"
            elif a_files or b_files:
                problem += " (no file name of one folder matches a name in the other)"
            raise DatasetError(self._layout_help(problem))
        names = [p[0].name for p, _ in kept]
        return names, ([d[0] for _, d in kept], [d[1] for _, d in kept])

    def _read_pair(self, paths: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
        a, b = (_resize(_decode(p), self.load_size) for p in paths)
        return a, b


def _by_stem(folder: Path) -> dict[str, Path]:
    """stem -> image file in `folder`; a repeated stem keeps the first name in sorted order."""
    files: dict[str, Path] = {}
    for path in _image_files(_list_files(folder)):
        if path.stem in files:
            _warn(f"skipped {path}: {files[path.stem].name} has the same name", DatasetWarning)
        else:
            files[path.stem] = path
    return files


# ---------------------------------------------------------------------------------------------
# Image folders (U-Net GAN, Progressive GAN)


class ImageDataset:
    """A folder of images (unconditional) or one sub-folder per class, decoded once into memory.

    Layouts: image files in `root` (and, when unconditional, in any sub-folder of it), or one
    sub-folder per class (`root/<class>/**/*.png`; class names sorted alphabetically give the
    indices 0, 1, ...). `conditional=None` infers the layout: class-conditional when `root` holds
    no image file itself and at least one sub-folder holds images. `conditional=False` gathers
    every image under `root` whatever the layout; `conditional=True` needs class sub-folders
    (image files lying directly in `root` are then warned about and skipped).

    Each image is centre-cropped to a square and resized (bicubic) to `image_size`. `channels`
    is inferred (1 when every image is greyscale, else 3) unless given (colour images are then
    converted to luma, grey ones repeated). `get` flips at random when `mirror`.

    Attributes: `root`, `names` (paths relative to `root`), `image_size`, `channels`,
    `conditional`, `num_classes` (0 when unconditional), `class_names`, `labels` ((N,) long).
    """

    def __init__(
        self,
        root: Path,
        *,
        image_size: int,
        channels: int | None = None,
        conditional: bool | None = None,
        mirror: bool = False,
    ) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3 (or None to infer), got {channels}")
        self.root = _check_root(root)
        self.image_size, self.mirror = image_size, mirror
        classes = self._class_folders()
        if conditional is None:
            conditional = bool(classes) and not _has_images(self.root)
        if conditional and not classes:
            raise DatasetError(
                "the dataset has no class sub-folders with images: a class-conditional dataset "
                "needs one sub-folder of images per class (e.g. cat/*.png, dog/*.png)"
            )
        self.conditional = conditional
        self.class_names = [c.name for c in classes] if conditional else []
        self.num_classes = len(self.class_names)
        files, labels = self._gather(classes) if conditional else self._gather_flat()
        self._load(files, labels, channels)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def pixels(self) -> torch.Tensor:
        """Every image as stored: (N, C, S, S) uint8 (read-only use, e.g. evaluation)."""
        return self._x

    def get(self, index: int, rng: torch.Generator) -> Batch:
        """{"x": (C, S, S) float in [-1, 1], "y": () long}; draws one flip from `rng` if mirror."""
        x = self._x[index]  # (C, S, S) uint8
        if self.mirror and _random_flip(rng):
            x = x.flip(-1)
        return {"x": dequantize(x), "y": self.labels[index].clone()}

    def _class_folders(self) -> list[Path]:
        return [d for d in _subfolders(self.root) if _has_images(d, recursive=True)]

    def _gather_flat(self) -> tuple[list[Path], list[int]]:
        files = _image_files(_list_files(self.root, recursive=True))
        return files, [0] * len(files)

    def _gather(self, classes: list[Path]) -> tuple[list[Path], list[int]]:
        for path in _list_files(self.root):
            _warn(f"skipped {path}: not inside a class sub-folder", DatasetWarning)
        files: list[Path] = []
        labels: list[int] = []
        for label, folder in enumerate(classes):
            found = _image_files(_list_files(folder, recursive=True))
            files += found
            labels += [label] * len(found)
        return files, labels

    def _load(self, files: list[Path], labels: list[int], channels: int | None) -> None:
        decoded = _decode_all(files, self._read)
        kept = [(f, y, d) for f, y, d in zip(files, labels, decoded, strict=True) if d is not None]
        if not kept:
            raise DatasetError(self._empty_message(len(files)))
        for label, name in enumerate(self.class_names):
            if not any(y == label for _, y, _ in kept):
                _warn(f"class {name!r} ({self.root / name}) has no usable image", DatasetWarning)
        self.names = [f.relative_to(self.root).as_posix() for f, _, _ in kept]
        images = [d for _, _, d in kept]
        self.channels = channels if channels is not None else _infer_channels(images)
        self._x = _stack(images, self.channels)  # (N, C, S, S) uint8
        self.labels = torch.tensor([y for _, y, _ in kept], dtype=torch.long)  # (N,)

    def _read(self, path: Path) -> np.ndarray:
        return _resize(_centre_square(_decode(path)), self.image_size)

    def _empty_message(self, candidates: int) -> str:
        problem = "no usable image in the dataset"
        if candidates:
            problem += f" (all {candidates} image files were unreadable, see the warnings)"
        return (
            f"{problem}: expected image files (PNG, JPEG, ...) in the dataset's top folder or "
            f"its sub-folders for an unconditional dataset, or one sub-folder of images per "
            f"class for a class-conditional one"
        )


def collate(items: list[Batch]) -> Batch:
    """Stack each key of `items` along a new first (batch) dimension."""
    if not items:
        raise ValueError("cannot collate an empty list of items")
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
