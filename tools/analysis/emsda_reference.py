"""Reference formulations of deformable sampling, for benchmarks and tests.

Both run mmcv's pure-PyTorch ``multi_scale_deformable_attn_pytorch`` (one ``grid_sample``
per level, ``align_corners=False``, zero padding), an implementation independent of
:func:`poseur_mm.ops.emsda_sampling`.

Note:
    - B: batch size, N: memory tokens (sum of H_l * W_l), C: memory channels
    - Q: queries, H: heads, L: levels, P: sampling points per head and level
"""
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
from torch import Tensor, nn


def per_head_copy_sampling(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                           attention_weights: Tensor) -> Tensor:
    """EMSDA sampling as the authors' release computes it: the full memory copied once per
    head, then standard multi-head deformable sampling with C channels per head.

    Args:
        value (Tensor): the unprojected memory, shape (B, N, C).
        spatial_shapes (Tensor): (H_l, W_l) of every level, long, shape (L, 2).
        sampling_locations (Tensor): normalised (x, y), shape (B, Q, H, L, P, 2).
        attention_weights (Tensor): shape (B, Q, H, L, P).

    Returns:
        Tensor: the same quantity as :func:`poseur_mm.ops.emsda_sampling`, shape (B, Q, H, C).
    """
    batch, num_value, channels = value.shape
    num_heads = sampling_locations.shape[2]
    # (B, N, C) -> (B, N, H, C): mmcv's reshapes turn this view into a real per-head copy
    per_head = value.unsqueeze(2).expand(batch, num_value, num_heads, channels)
    output = multi_scale_deformable_attn_pytorch(per_head, spatial_shapes, sampling_locations,
                                                 attention_weights)  # (B, Q, H*C)
    return output.view(batch, -1, num_heads, channels)


def deformable_detr_sampling(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                             attention_weights: Tensor, value_proj: nn.Linear) -> Tensor:
    """Deformable-DETR's attention core: project the whole memory (C -> C), split it into
    H heads of C / H channels and sample each head at its own points.

    Args:
        value (Tensor): the memory, shape (B, N, C).
        spatial_shapes (Tensor): (H_l, W_l) of every level, long, shape (L, 2).
        sampling_locations (Tensor): normalised (x, y), shape (B, Q, H, L, P, 2).
        attention_weights (Tensor): shape (B, Q, H, L, P).
        value_proj (nn.Linear): the value projection, C -> C.

    Returns:
        Tensor: concatenated head outputs (before the output projection), shape (B, Q, C).
    """
    batch, num_value, channels = value.shape
    num_heads = sampling_locations.shape[2]
    projected = value_proj(value).view(batch, num_value, num_heads, channels // num_heads)
    return multi_scale_deformable_attn_pytorch(projected, spatial_shapes, sampling_locations,
                                               attention_weights)
