"""Pictures of a realness map: the map itself in grey, and a heat-map overlay with a legend.

The map (H, W) holds a discriminator's "looks real" probability per pixel (`models.realness`).
`map_picture` stores it as an 8-bit grey PNG, 255 = real, 0 = fake. `overlay_picture` blends a
colour ramp over the image (ColorBrewer's RdYlGn end and middle colours: red = looks fake, yellow
= undecided, green = looks real), outlines the least real region's box in white on black so it
shows on any background, and adds a legend strip underneath: "fake", the ramp, "real" (Pillow's
default font, scaled with the picture's width). The picture keeps the image's pixels at the top
left, so the box and the map line up with the image; the canvas is widened (white) when the image
is narrower than the legend needs.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FAKE = (215, 48, 39)
UNDECIDED = (254, 224, 139)
REAL = (26, 152, 80)
OPACITY = 0.5  # weight of the heat map over the image
MIN_LEGEND_WIDTH = 96
PAPER = (255, 255, 255)
INK = (0, 0, 0)


def _levels(realness: np.ndarray) -> np.ndarray:
    """(H, W) realness in [0, 1] -> (H, W) uint8 grey levels, 255 = looks real."""
    return np.rint(np.clip(realness, 0.0, 1.0) * 255.0).astype(np.uint8)


def map_picture(realness: np.ndarray) -> Image.Image:
    """The map (H, W) in [0, 1] as a grey "L" picture of W x H pixels, 255 = looks real."""
    return Image.fromarray(_levels(realness), mode="L")


def heat_colours(realness: np.ndarray) -> np.ndarray:
    """Colours of realness values (any shape) on the ramp fake -> undecided -> real: (..., 3)."""
    stops = np.array([FAKE, UNDECIDED, REAL], dtype=np.float64)  # (3, 3)
    t = np.clip(realness, 0.0, 1.0)[..., None] * 2.0  # (..., 1) in [0, 2]
    low = np.minimum(t.astype(np.int64), 1)  # (..., 1): the segment, 0 or 1
    frac = t - low  # (..., 1) position within the segment
    colours = stops[low[..., 0]] * (1.0 - frac) + stops[low[..., 0] + 1] * frac  # (..., 3)
    return np.rint(colours).astype(np.uint8)


RAMP = heat_colours(np.linspace(0.0, 1.0, 256))  # (256, 3): the colour of each grey level


def _legend(width: int) -> Image.Image:
    """A strip `width` wide: "fake", the colour ramp, "real", in a font scaled to the strip."""
    height = max(16, round(width / 24))
    strip = Image.new("RGB", (width, height), PAPER)
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=max(8, round(height * 0.6)))
    pad = max(2, height // 4)
    left = pad + round(draw.textlength("fake", font=font)) + pad
    right = width - pad - round(draw.textlength("real", font=font)) - pad
    ramp = heat_colours(np.linspace(0.0, 1.0, max(1, right - left)))  # (w, 3), fake to real
    bar = np.broadcast_to(ramp[None], (height - 2 * pad, *ramp.shape))  # (h, w, 3)
    strip.paste(Image.fromarray(np.ascontiguousarray(bar), mode="RGB"), (left, pad))
    draw.rectangle((left, pad, left + ramp.shape[0] - 1, height - pad - 1), outline=INK)
    draw.text((pad, height / 2), "fake", fill=INK, font=font, anchor="lm")
    draw.text((width - pad, height / 2), "real", fill=INK, font=font, anchor="rm")
    return strip


def overlay_picture(
    image: Image.Image, realness: np.ndarray, box: tuple[int, int, int, int]
) -> Image.Image:
    """The RGB `image` with the map (H, W) blended over it, `box` outlined and a legend below.

    `box` is (x0, y0, x1, y1) in the image's pixels, x1 and y1 exclusive.
    """
    heat = Image.fromarray(RAMP[_levels(realness)], mode="RGB")  # (H, W, 3) by table look-up
    blended = Image.blend(image.convert("RGB"), heat, OPACITY)
    draw = ImageDraw.Draw(blended)
    x0, y0, x1, y1 = box
    line = max(1, min(image.size) // 100)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=INK, width=2 * line)
    if x1 - x0 > 2 * line and y1 - y0 > 2 * line:
        inner = (x0 + line, y0 + line, x1 - 1 - line, y1 - 1 - line)
        draw.rectangle(inner, outline=PAPER, width=line)
    legend = _legend(max(image.width, MIN_LEGEND_WIDTH))
    canvas = Image.new("RGB", (legend.width, image.height + legend.height), PAPER)
    canvas.paste(blended, (0, 0))
    canvas.paste(legend, (0, image.height))
    return canvas
