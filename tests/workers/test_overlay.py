"""The pictures of a realness map: grey levels, the colour ramp, the overlay's box and legend."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from workers.overlay import (
    FAKE,
    INK,
    MIN_LEGEND_WIDTH,
    PAPER,
    REAL,
    UNDECIDED,
    heat_colours,
    map_picture,
    overlay_picture,
)


def png_round_trip(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        decoded.load()
        return decoded.copy()


def test_the_map_picture_is_grey_with_255_for_real():
    realness = np.array([[0.0, 0.5], [1.0, 1.2]])
    picture = png_round_trip(map_picture(realness))
    assert picture.mode == "L" and picture.size == (2, 2)
    assert np.asarray(picture).tolist() == [[0, 128], [255, 255]]


def test_the_ramp_runs_from_red_through_yellow_to_green():
    colours = heat_colours(np.array([0.0, 0.5, 1.0, -1.0]))
    assert [tuple(c) for c in colours] == [FAKE, UNDECIDED, REAL, FAKE]
    assert heat_colours(np.zeros((3, 4))).shape == (3, 4, 3)


def test_the_overlay_reddens_fake_pixels_outlines_the_box_and_has_a_legend():
    image = Image.new("RGB", (200, 120), (128, 128, 128))
    realness = np.ones((120, 200))
    realness[30:60, 100:150] = 0.0
    picture = png_round_trip(overlay_picture(image, realness, (100, 30, 150, 60)))
    assert picture.mode == "RGB" and picture.width == 200 and picture.height > 120
    pixels = np.asarray(picture).astype(int)  # (H', W, 3)
    inside, outside = pixels[45, 125], pixels[100, 20]
    assert inside[0] > inside[1] and outside[1] > outside[0]  # red inside, green outside
    assert tuple(pixels[30, 100]) == INK and tuple(pixels[31, 125]) == PAPER  # black, then white
    legend = pixels[120:]
    bar_row = legend[legend.shape[0] // 2]
    coloured = [p for p in bar_row if p.max() - p.min() > 60]  # the ramp, not grey text
    assert coloured[0][0] > coloured[0][1] and coloured[-1][1] > coloured[-1][0]  # fake .. real
    assert (legend == 0).all(axis=2).any()  # the black text and frame


def test_a_small_image_gets_a_canvas_wide_enough_for_the_legend():
    image = Image.new("RGB", (16, 16), (0, 0, 255))
    picture = overlay_picture(image, np.full((16, 16), 0.5), (0, 0, 16, 16))
    assert picture.width == MIN_LEGEND_WIDTH and picture.height > 16
    assert picture.getpixel((MIN_LEGEND_WIDTH - 1, 0)) == PAPER
