"""Sine positional encodings of normalised coordinates (DETR-style, interleaved sin/cos)."""
import math

import torch
from torch import Tensor

TEMPERATURE = 10000


def sine_encoding(coords: Tensor, num_feats: int = 128) -> Tensor:
    """Encode scalar coordinates as ``[sin a_0, cos a_0, sin a_1, cos a_1, ...]``.

    ``a_j = 2 * pi * u / TEMPERATURE ** (2 * j / num_feats)`` for ``j < num_feats / 2``.

    Args:
        coords (Tensor): normalised coordinates u, any shape (*).
        num_feats (int): output channels per coordinate, even. Defaults to 128.

    Returns:
        Tensor: the encoding, shape (*, num_feats).
    """
    if num_feats % 2:
        raise ValueError(f'num_feats must be even, got {num_feats}')
    exponent = torch.arange(num_feats // 2, dtype=coords.dtype, device=coords.device)
    freqs = TEMPERATURE**(2 * exponent / num_feats)
    angles = coords.unsqueeze(-1) * (2 * math.pi) / freqs  # (*, num_feats / 2)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)


def keypoint_encoding(points: Tensor, embed_dims: int) -> Tensor:
    """Sine encoding of 2D points, x channels first then y.

    Args:
        points (Tensor): normalised (x, y) points, shape (*, 2).
        embed_dims (int): output channels, half per axis.

    Returns:
        Tensor: shape (*, embed_dims).
    """
    half = embed_dims // 2
    return torch.cat(
        (sine_encoding(points[..., 0], half), sine_encoding(points[..., 1], half)), dim=-1)


def grid_encoding(height: int, width: int, embed_dims: int,
                  device: torch.device = None) -> Tensor:
    """Sine encoding of the pixel centres of a feature map, y channels first then x.

    Pixel (i, j) sits at ``((j + 0.5) / width, (i + 0.5) / height)``.

    Args:
        height (int): map height H.
        width (int): map width W.
        embed_dims (int): output channels, half per axis.
        device (torch.device): where to create the encoding. Defaults to the CPU.

    Returns:
        Tensor: the encoding of the row-major flattened map, shape (H * W, embed_dims).
    """
    half = embed_dims // 2
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    enc_y = sine_encoding(ys, half)[:, None].expand(height, width, half)
    enc_x = sine_encoding(xs, half)[None].expand(height, width, half)
    return torch.cat((enc_y, enc_x), dim=-1).flatten(0, 1)
