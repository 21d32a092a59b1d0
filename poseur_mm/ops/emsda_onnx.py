"""EMSDA sampling as standard ONNX operators (GridSample, opset >= 16).

:func:`poseur_mm.ops.emsda_sampling` computes the sampling with ``F.embedding_bag``, which
the ONNX exporter does not map to a standard operator. This version computes the same sums
with one ``F.grid_sample`` per level over the shared memory: the heads are folded into the
grid's query axis, so the memory is never copied per head. It needs the level sizes as
Python integers, which is what a fixed-input-size export provides.
"""
import torch.nn.functional as F
from torch import Tensor


def emsda_sampling_grid_sample(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
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
    # grid_sample's grid spans [-1, 1] over the map: (B, Q*H, L, P, 2)
    grids = (2 * sampling_locations - 1).flatten(1, 2)
    weights = attention_weights.flatten(1, 2)  # (B, Q*H, L, P)
    output = None
    start = 0
    for level, (height, width) in enumerate(shapes):
        # (B, H_l*W_l, C) -> (B, C, H_l, W_l): one map shared by every head
        memory = value[:, start:start + height * width].transpose(1, 2)
        memory = memory.reshape(batch, channels, height, width)
        start += height * width
        samples = F.grid_sample(
            memory, grids[:, :, level], mode='bilinear', padding_mode='zeros',
            align_corners=False)  # (B, C, Q*H, P)
        weighted = (samples * weights[:, None, :, level]).sum(-1)  # (B, C, Q*H)
        output = weighted if output is None else output + weighted
    # (B, C, Q*H) -> (B, Q, H, C)
    return output.transpose(1, 2).reshape(batch, num_queries, num_heads, channels)
