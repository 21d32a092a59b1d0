"""EMSDA sampling as standard ONNX operators (Gather and MatMul).

:func:`poseur_mm.ops.emsda_sampling` computes the sampling with ``F.embedding_bag``, which
the ONNX exporter does not map to a standard operator. This version gathers the same
corner rows with one ``Gather`` and sums them with one batched ``MatMul`` per call.

The first export used one ``F.grid_sample`` (ONNX GridSample) per level: onnxruntime's
GridSample kernel made Poseur-R50's head and neck cost +129 % over its bare ResNet-50 at
batch 1 on one thread; this version: +35 % (``docs/deploy.md``).

Zero padding without masks: every level gets a border of zero cells (one before, two after,
in x and y), and pixel coordinates are clamped to [-1, size]. A clamped point then reads
only border cells where ``grid_sample`` reads zeros, and its own bilinear weights are
unchanged wherever a corner lies inside the map. The padded memory depends only on the
memory, so onnxruntime's common-subexpression elimination builds it once for all decoder
layers.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# zero cells added before and after every level, in x and in y
BORDER = (1, 2)


def _padded_levels(value: Tensor, shapes: List[Tuple[int, int]]) -> Tensor:
    """The memory with a zero border around every level, shape (B * M, C), M the padded
    token count."""
    batch, _, channels = value.shape
    levels, start = [], 0
    for height, width in shapes:
        level = value[:, start:start + height * width].reshape(batch, height, width, channels)
        levels.append(F.pad(level, (0, 0, *BORDER, *BORDER)).flatten(1, 2))
        start += height * width
    return torch.cat(levels, dim=1).reshape(-1, channels)


def emsda_sampling_gather(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                          attention_weights: Tensor) -> Tensor:
    """Attention-weighted bilinear samples of a shared multi-scale memory, per head.

    Same contract and result as :func:`poseur_mm.ops.emsda_sampling` (bilinear sampling,
    ``align_corners=False``, zeros outside the maps).

    Note:
        - B: batch size, N: memory tokens (sum of H_l * W_l), C: memory channels
        - Q: queries, H: heads, L: levels, P: sampling points per head and level

    Args:
        value (Tensor): the unprojected memory, levels flattened row-major in order,
            shape (B, N, C).
        spatial_shapes (Tensor): (H_l, W_l) of every level, shape (L, 2); read as Python
            integers (constants in an exported graph).
        sampling_locations (Tensor): normalised (x, y) sampling points in [0, 1] map
            coordinates, shape (B, Q, H, L, P, 2).
        attention_weights (Tensor): weight of every point, shape (B, Q, H, L, P).

    Returns:
        Tensor: for every head the weighted sum of its samples, shape (B, Q, H, C).
    """
    batch, _, channels = value.shape
    _, num_queries, num_heads, num_levels, num_points, _ = sampling_locations.shape
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    if len(shapes) != num_levels:
        raise ValueError(f'spatial_shapes describe {len(shapes)} levels but the sampling '
                         f'locations have {num_levels}; pass one (H, W) row per level')
    before, after = BORDER
    sizes, strides, starts, corner_offsets = [], [], [], []
    padded_start = 0
    for height, width in shapes:
        row = width + before + after  # padded row length
        sizes.append((width, height))
        strides.append((1, row))
        starts.append(padded_start + before * row + before)  # cell (0, 0) of the level
        corner_offsets.append((0, 1, row, row + 1))  # (x0, y0), (x0+1, y0), (x0, y0+1), ...
        padded_start += (height + before + after) * row
    dtype, device = sampling_locations.dtype, sampling_locations.device
    sizes = torch.tensor(sizes, dtype=dtype, device=device).view(num_levels, 1, 2)
    # pixel coordinates of grid_sample(align_corners=False), clamped into the border
    pixels = torch.minimum((sampling_locations * sizes - 0.5).clamp(min=-before), sizes)
    corners = pixels.floor()
    frac_x, frac_y = (pixels - corners).unbind(-1)  # (B, Q, H, L, P)
    # flat index of each top-left corner within its batch element, exact in float32 up
    # to 2**24 padded cells
    strides = torch.tensor(strides, dtype=dtype, device=device).view(num_levels, 1, 2)
    starts = torch.tensor(starts, dtype=dtype, device=device).view(num_levels, 1)
    cells = (corners * strides).sum(-1) + starts
    batch_starts = torch.arange(batch, device=device).view(batch, 1, 1, 1, 1) * padded_start
    cells = cells.long() + batch_starts
    cells = cells.unsqueeze(-1) + torch.tensor(corner_offsets, device=device).view(num_levels, 1, 4)
    weights_x = torch.stack((1 - frac_x, frac_x), dim=-1)
    weights_y = torch.stack((1 - frac_y, frac_y), dim=-1)
    # (B, Q, H, L, P, 4) in the corner order of cells: y major, x minor
    weights = (weights_y.unsqueeze(-1) * weights_x.unsqueeze(-2)).flatten(-2)
    weights = weights * attention_weights.unsqueeze(-1)
    bag = num_levels * num_points * 4
    rows = _padded_levels(value, shapes)[cells.flatten()].view(-1, bag, channels)
    # (B*Q*H, 1, L*P*4) @ (B*Q*H, L*P*4, C): the weighted sum of every head's corners
    output = torch.matmul(weights.view(-1, 1, bag).to(value.dtype), rows)
    return output.view(batch, num_queries, num_heads, channels)
