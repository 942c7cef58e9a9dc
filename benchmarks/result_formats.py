"""What a result image costs to encode in each format the service writes, and its bytes.

The worker's own encoder (`workers.inference.encode_image`: PNG at `PNG_COMPRESS_LEVEL`, WebP at
libwebp's effort `WEBP_METHOD`, JPEG) on 256x256 photo-like RGB images (`cli_throughput`'s
`photo_png`, a smooth random field, one per seed; `--grain S` adds Gaussian noise of standard
deviation S, closer to a generator's texture), in this process (Pillow's encoders run on one
thread): the median encode time over the images (each the best of `--repeat` encodes) and the
mean size, against PNG. Decoding is timed too (what a client pays).

    .venv/bin/python benchmarks/result_formats.py
    .venv/bin/python benchmarks/result_formats.py --grain 8
    .venv/bin/python benchmarks/result_formats.py --size 512 --quality 75
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
from cli_throughput import photo_png
from PIL import Image

from core.params import DEFAULT_QUALITY
from core.storage import PNG_COMPRESS_LEVEL
from workers.inference import WEBP_METHOD, encode_image


def best_ms(action, repeat: int) -> float:
    """The fastest of `repeat` runs of `action()`, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def decode(data: bytes) -> None:
    """Decode every pixel of an encoded image."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def picture(seed: int, size: int, grain: float) -> Image.Image:
    """A photo-like RGB image, with Gaussian grain of standard deviation `grain` (0: none)."""
    image = Image.open(io.BytesIO(photo_png(seed, size))).convert("RGB")
    if not grain:
        return image
    noise = np.random.default_rng(seed).normal(0, grain, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


def measure(
    images: list[Image.Image], fmt: str, quality: int | None, repeat: int
) -> tuple[float, float, float]:
    """(median encode ms, median decode ms, mean bytes) of `images` in `fmt`."""
    encodes, decodes, sizes = [], [], []
    for image in images:
        data = encode_image(image, fmt, quality)
        encodes.append(best_ms(lambda image=image: encode_image(image, fmt, quality), repeat))
        decodes.append(best_ms(lambda data=data: decode(data), repeat))
        sizes.append(len(data))
    return statistics.median(encodes), statistics.median(decodes), statistics.fmean(sizes)


def main() -> None:
    """Print the table (markdown) for the formats at the size and quality asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--images", type=int, default=16, help="different images (seeds)")
    parser.add_argument("--repeat", type=int, default=20, help="encodes per image (best kept)")
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY, help="webp and jpeg")
    parser.add_argument("--grain", type=float, default=0.0, help="noise added (std, 0-255)")
    args = parser.parse_args()
    images = [picture(seed, args.size, args.grain) for seed in range(args.images)]
    rows = [
        ("png", None, f"zlib level {PNG_COMPRESS_LEVEL}"),
        ("webp", args.quality, f"quality {args.quality}, method {WEBP_METHOD}"),
        ("jpeg", args.quality, f"quality {args.quality}"),
    ]
    grain = f", grain {args.grain:g}" if args.grain else ""
    print(f"{args.images} photo-like {args.size}x{args.size} RGB images{grain}")
    print("| format | settings | encode | decode | bytes | bytes / PNG |")
    print("| --- | --- | --- | --- | --- | --- |")
    png_bytes = None
    for fmt, quality, settings in rows:
        encode, decode_ms, size = measure(images, fmt, quality, args.repeat)
        png_bytes = png_bytes or size
        print(
            f"| {fmt} | {settings} | {encode:.2f} ms | {decode_ms:.2f} ms | {size / 1024:.1f} kB "
            f"| {size / png_bytes:.2f} |"
        )


if __name__ == "__main__":
    main()
