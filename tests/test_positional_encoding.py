"""Sine encodings at hand-computed points (poseur_reference.md §1.3 and §1.5)."""
import math

import pytest
import torch

from poseur_mm.models.layers.positional_encoding import grid_encoding, keypoint_encoding


def axis_encoding(u, channels):
    """Channel k of the encoding of coordinate u: angle 2 pi u / 10000^(2 floor(k/2) / n),
    sin on even k, cos on odd k."""
    values = []
    for k in range(channels):
        angle = 2 * math.pi * u / 10000**(2 * (k // 2) / channels)
        values.append(math.sin(angle) if k % 2 == 0 else math.cos(angle))
    return values


def test_keypoint_encoding_four_channels_written_out():
    # two channels per axis: [sin 2 pi x, cos 2 pi x, sin 2 pi y, cos 2 pi y]
    x, y = 0.3, -0.45
    expected = [math.sin(2 * math.pi * x), math.cos(2 * math.pi * x),
                math.sin(2 * math.pi * y), math.cos(2 * math.pi * y)]
    out = keypoint_encoding(torch.tensor([[x, y]], dtype=torch.float64), 4)
    torch.testing.assert_close(out, torch.tensor([expected], dtype=torch.float64))


@pytest.mark.parametrize('point', [(0.0, 0.0), (0.25, 0.8), (1.3, -0.2)])
def test_keypoint_encoding_256_channels_x_first(point):
    x, y = point
    expected = axis_encoding(x, 128) + axis_encoding(y, 128)
    out = keypoint_encoding(torch.tensor([[[x, y]]], dtype=torch.float64), 256)
    assert out.shape == (1, 1, 256)
    torch.testing.assert_close(out[0, 0], torch.tensor(expected, dtype=torch.float64))


def test_keypoint_encoding_float32_close_to_formula():
    out = keypoint_encoding(torch.tensor([0.6, 0.1]), 256)
    expected = torch.tensor(axis_encoding(0.6, 128) + axis_encoding(0.1, 128))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_grid_encoding_pixel_centres_y_first():
    height, width = 3, 5
    out = grid_encoding(height, width, 256)
    assert out.shape == (height * width, 256)
    for row, col in [(0, 0), (1, 3), (2, 4)]:
        y, x = (row + 0.5) / height, (col + 0.5) / width
        expected = torch.tensor(axis_encoding(y, 128) + axis_encoding(x, 128))
        torch.testing.assert_close(out[row * width + col], expected, rtol=0, atol=1e-5)


def test_grid_encoding_four_channels_written_out():
    # a 2 x 1 map: pixel centres at y = 1/4 and 3/4, x = 1/2
    out = grid_encoding(2, 1, 4)
    expected = torch.tensor([[1.0, 0.0, 0.0, -1.0],  # sin(pi/2), cos(pi/2), sin(pi), cos(pi)
                             [-1.0, 0.0, 0.0, -1.0]])  # sin(3pi/2), cos(3pi/2), ...
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
