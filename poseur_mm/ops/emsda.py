"""Sampling step of efficient multi-scale deformable attention (EMSDA).

EMSDA (Poseur, ECCV 2022) samples the *unprojected* decoder memory: every head reads full
C-dim vectors at its own sampling points and only the few sampled vectors are projected
afterwards. This module holds that sampling step.

The implementation turns bilinear sampling into one weighted gather: each sampling point
contributes its four neighbouring memory cells, weighted by bilinear weight x attention
weight, and ``F.embedding_bag`` sums those weighted rows per (batch, query, head) without
materialising the gathered vectors. The memory is shared by all heads (no per-head copy),
every level is handled in the same call, and the same code runs on CPU and CUDA.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def _corner_indices_and_weights(spatial_shapes: Tensor, level_start: Tensor,
                                sampling_locations: Tensor,
                                attention_weights: Tensor) -> tuple:
    """Flat memory index and weight of the 4 bilinear neighbours of every point.

    Follows ``grid_sample(align_corners=False, padding_mode='zeros')``: a normalised
    coordinate u maps to pixel ``u * W - 0.5`` and neighbours outside the map weigh 0.

    Returns:
        tuple[Tensor, Tensor]: indices (long) and weights, both (B, Q, H, L, P, 4),
        indices into the level-flattened memory of one batch element.
    """
    heights = spatial_shapes[:, 0].view(1, 1, 1, -1, 1)
    widths = spatial_shapes[:, 1].view(1, 1, 1, -1, 1)
    dtype = sampling_locations.dtype
    # Points further out than one pixel only touch invalid cells; clamping keeps the
    # integer conversion safe for arbitrarily far points without changing any value.
    x = (sampling_locations[..., 0] * widths - 0.5).clamp(min=-2).minimum(widths.to(dtype) + 1)
    y = (sampling_locations[..., 1] * heights - 0.5).clamp(min=-2).minimum(heights.to(dtype) + 1)
    x0 = x.floor()
    y0 = y.floor()
    fx = x - x0
    fy = y - y0
    x0 = x0.long()
    y0 = y0.long()

    indices, weights = [], []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi = x0 + dx
            yi = y0 + dy
            valid = (xi >= 0) & (xi < widths) & (yi >= 0) & (yi < heights)
            flat = level_start.view(1, 1, 1, -1, 1) + yi * widths + xi
            indices.append(torch.where(valid, flat, torch.zeros_like(flat)))
            weights.append(wx * wy * valid.to(dtype) * attention_weights)
    return torch.stack(indices, dim=-1), torch.stack(weights, dim=-1)


def emsda_sampling(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                   attention_weights: Tensor) -> Tensor:
    """Attention-weighted bilinear samples of a shared multi-scale memory, per head.

    Note:
        - B: batch size, N: memory tokens (sum of H_l * W_l), C: memory channels
        - Q: queries, H: heads, L: levels, P: sampling points per head and level

    Args:
        value (Tensor): the unprojected memory, levels flattened row-major in order,
            shape (B, N, C).
        spatial_shapes (Tensor): (H_l, W_l) of every level, long, shape (L, 2).
        sampling_locations (Tensor): normalised (x, y) sampling points, (0, 0) the top-left
            corner of a map and (1, 1) its bottom-right corner, shape (B, Q, H, L, P, 2).
            Points outside the maps read zeros.
        attention_weights (Tensor): weight of every point, shape (B, Q, H, L, P).

    Returns:
        Tensor: for every head the weighted sum of its samples, shape (B, Q, H, C).
    """
    batch, num_value, channels = value.shape
    _, num_queries, num_heads, num_levels, num_points, _ = sampling_locations.shape
    if spatial_shapes.shape != (num_levels, 2):
        raise ValueError(f'spatial_shapes must be ({num_levels}, 2) for {num_levels} levels, '
                         f'got {tuple(spatial_shapes.shape)}')
    if int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()) != num_value:
        raise ValueError(f'value has {num_value} tokens but spatial_shapes '
                         f'{spatial_shapes.tolist()} describe a different number; flatten every '
                         'level of the memory in order')
    spatial_shapes = spatial_shapes.to(sampling_locations.device)
    areas = spatial_shapes[:, 0] * spatial_shapes[:, 1]
    level_start = torch.cat([areas.new_zeros(1), areas.cumsum(0)[:-1]])

    indices, weights = _corner_indices_and_weights(spatial_shapes, level_start,
                                                   sampling_locations, attention_weights)
    # Offset each batch element into the batch-flattened memory: (B, Q, H, L, P, 4).
    batch_offset = torch.arange(batch, device=indices.device).view(-1, 1, 1, 1, 1, 1)
    indices = indices + batch_offset * num_value
    bag_size = num_levels * num_points * 4
    output = F.embedding_bag(
        indices.reshape(-1, bag_size),  # (B*Q*H, L*P*4)
        value.reshape(batch * num_value, channels),
        per_sample_weights=weights.reshape(-1, bag_size).to(value.dtype),
        mode='sum')
    return output.view(batch, num_queries, num_heads, channels)
