"""Tensors to PNG pictures."""

import io

import torch
from PIL import Image

from models.images import to_pil, to_uint8
from training.images import grid


def test_to_uint8_maps_the_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    assert to_uint8(x).flatten().tolist() == [0, 128, 255, 255]


def test_grid_layout_and_png_round_trip():
    images = torch.linspace(-1, 1, 5).view(5, 1, 1, 1).expand(5, 3, 4, 4)
    picture = grid(images, columns=3, padding=1)
    assert picture.size == (3 * 5 + 1, 2 * 5 + 1) and picture.mode == "RGB"
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    assert decoded.getpixel((1, 1)) == (0, 0, 0)  # image 0: -1
    assert decoded.getpixel((1, 6)) == (191, 191, 191)  # image 3, second row: 0.5
    assert decoded.getpixel((0, 0)) == (0, 0, 0)  # padding


def test_grey_images_stay_grey():
    assert to_pil(torch.zeros(1, 4, 4)).mode == "L"
    assert grid(torch.zeros(2, 1, 4, 4)).mode == "L"
