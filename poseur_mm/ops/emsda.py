"""Sampling step of efficient multi-scale deformable attention (EMSDA).

EMSDA (Poseur, ECCV 2022) samples the *unprojected* decoder memory: every head reads full
C-dim vectors at its own sampling points and only the few sampled vectors are projected
afterwards. This module holds that sampling step.

Bilinear sampling becomes one weighted gather: each sampling point contributes its four
neighbouring memory cells, weighted by bilinear weight x attention weight, and
``F.embedding_bag`` sums those weighted rows per (batch, query, head) without materialising
the gathered vectors. The memory is shared by all heads (no per-head copy) and every level
of every batch element is handled in the same call.

:func:`emsda_sampling` dispatches to one of three forms of the same function:

- float32/float64 on CPU: :class:`_EMSDASamplingCPU`, an autograd Function with a
  hand-written backward. The memory gradient is a second ``embedding_bag`` over the
  corners sorted by memory cell (each gradient row is written once, no zero-filled scatter
  target) and the corner dot products ``grad . value[cell]`` come from one sampled
  sparse-dense product. Forward+backward of the op at B=32, Q=68 ran 1.1-1.8x faster than
  autograd through ``embedding_bag`` on a 2-core CPU (docs/benchmarks.md). It is kept
  because a whole Poseur-R50 training step (batch 32, 256x192, 2 threads, AdamW) is
  faster with it by more than 5 %: 1.07x, 1.18x and 1.07x (medians of 8-10 interleaved
  steps of 6.6-8.6 s) in three runs on a quiet machine, 1.03x and 1.21x in two under load
  (``python -m tools.analysis.emsda_train_step``).
- everything else (CUDA, half-precision memories): autograd through ``embedding_bag``,
  whose kernels PyTorch ships for every device. ``sampled_addmm`` has no half-precision
  CPU kernel, and its CUDA kernel has not been tried with this op's unsorted, repeated
  columns. mmcv's compiled MSDA op does not fit either: it needs a per-head memory layout,
  which for EMSDA means copying the full memory once per head.
- during ONNX export: :func:`~poseur_mm.ops.emsda_onnx.emsda_sampling_gather`, the same
  sums as standard Gather and MatMul operators (``embedding_bag`` has no ONNX operator).

``torch.compile`` of the corner computation was measured and not adopted: it saved ~15% of
the forward at B=32, Q=68 and nothing measurable of forward+backward, and it recompiles
for every new shape.
"""
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .emsda_onnx import emsda_sampling_gather

# memory dtypes of the hand-written CPU backward (``sampled_addmm`` has no half types)
SPARSE_DTYPES = (torch.float32, torch.float64)


class _Corners(NamedTuple):
    """The 4 bilinear neighbours of every sampling point, each (B, Q, H, L, P, 4) unless
    noted; corner order (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)."""
    indices: Tensor  # long, into the batch-flattened memory (B * N, C); 0 where invalid
    valid: Tensor  # bool, the neighbour lies inside its map
    bilinear: Tensor  # bilinear weights, 0 where invalid
    frac_x: Tensor  # x - x0, (B, Q, H, L, P)
    frac_y: Tensor  # y - y0, (B, Q, H, L, P)
    widths: Tensor  # W_l, (1, 1, 1, L, 1)
    heights: Tensor  # H_l, (1, 1, 1, L, 1)


def _bilinear_corners(spatial_shapes: Tensor, sampling_locations: Tensor,
                      num_value: int) -> _Corners:
    """Corner cells and weights following ``grid_sample(align_corners=False,
    padding_mode='zeros')``: a normalised coordinate u maps to pixel ``u * W - 0.5`` and
    neighbours outside the map weigh 0."""
    batch = sampling_locations.shape[0]
    dtype = sampling_locations.dtype
    heights = spatial_shapes[:, 0].view(1, 1, 1, -1, 1)
    widths = spatial_shapes[:, 1].view(1, 1, 1, -1, 1)
    areas = spatial_shapes[:, 0] * spatial_shapes[:, 1]
    level_start = (areas.cumsum(0) - areas).view(1, 1, 1, -1, 1)
    batch_start = torch.arange(batch, device=areas.device).view(-1, 1, 1, 1, 1) * num_value
    # Points further out than one pixel only touch invalid cells; clamping keeps the
    # integer conversion safe for arbitrarily far points without changing any value.
    x = (sampling_locations[..., 0] * widths - 0.5).clamp(min=-2).minimum(widths.to(dtype) + 1)
    y = (sampling_locations[..., 1] * heights - 0.5).clamp(min=-2).minimum(heights.to(dtype) + 1)
    x0, y0 = x.floor(), y.floor()
    frac_x, frac_y = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    # validity per axis of the left/right and top/bottom neighbours, combined per corner
    left, right = (x0 >= 0) & (x0 < widths), (x0 >= -1) & (x0 < widths - 1)
    top, bottom = (y0 >= 0) & (y0 < heights), (y0 >= -1) & (y0 < heights - 1)
    valid = torch.stack((left & top, right & top, left & bottom, right & bottom), dim=-1)
    # flat index of the top-left corner plus each corner's offset (0, 1, W, W + 1)
    top_left = batch_start + level_start + y0 * widths + x0
    offsets = torch.stack((widths * 0, widths * 0 + 1, widths, widths + 1), dim=-1)
    indices = torch.where(valid, top_left.unsqueeze(-1) + offsets, 0)
    rest_x, rest_y = 1 - frac_x, 1 - frac_y
    bilinear = torch.stack(
        (rest_x * rest_y, frac_x * rest_y, rest_x * frac_y, frac_x * frac_y), dim=-1) * valid
    return _Corners(indices, valid, bilinear, frac_x, frac_y, widths, heights)


def _weighted_gather(value: Tensor, indices: Tensor, weights: Tensor) -> Tensor:
    """Per (b, q, h): the weighted sum of its L * P * 4 corner rows, shape (B * Q * H, C)."""
    bag = indices.shape[3] * indices.shape[4] * 4
    return F.embedding_bag(
        indices.reshape(-1, bag),  # (B*Q*H, L*P*4)
        value.reshape(-1, value.shape[-1]),  # (B*N, C)
        per_sample_weights=weights.reshape(-1, bag),
        mode='sum')


def _corner_dots(value: Tensor, grad: Tensor, indices: Tensor) -> Tensor:
    """``grad[b, q, h] . value[cell]`` for every corner, shape (B, Q, H, L, P, 4).

    ``sampled_addmm`` evaluates ``grad @ value.T`` only at a CSR pattern with one row per
    (b, q, h) and its L * P * 4 corner cells as columns. The pattern may repeat or reorder
    columns within a row (the CPU kernel computes every stored entry on its own), so the
    invariant checks are turned off.
    """
    rows, bag = grad.shape[0], indices.shape[3] * indices.shape[4] * 4
    columns = value.reshape(-1, value.shape[-1])  # (B*N, C)
    if columns.shape[0] < bag:
        # sampled_addmm rejects patterns with more stored entries than matrix cells,
        # possible only for memories of fewer than L*P*4 tokens: pad zero rows
        columns = F.pad(columns, (0, 0, 0, bag - columns.shape[0]))
    crow = torch.arange(0, rows * bag + 1, bag, device=indices.device)
    with warnings.catch_warnings():  # a one-time notice that sparse CSR is a beta feature
        warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in beta')
        pattern = torch.sparse_csr_tensor(
            crow,
            indices.reshape(-1),
            grad.new_zeros(rows * bag),
            size=(rows, columns.shape[0]),
            check_invariants=False)
    dots = torch.sparse.sampled_addmm(pattern, grad, columns.t(), beta=0.0)
    return dots.values().view(indices.shape)


class _EMSDASamplingCPU(torch.autograd.Function):
    """:func:`emsda_sampling` with a hand-written backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                attention_weights: Tensor) -> Tensor:
        corners = _bilinear_corners(spatial_shapes, sampling_locations, value.shape[1])
        weights = (corners.bilinear * attention_weights.unsqueeze(-1)).to(value.dtype)
        ctx.corners = corners
        ctx.location_dtype = sampling_locations.dtype
        ctx.save_for_backward(value, weights, attention_weights)
        output = _weighted_gather(value, corners.indices, weights)
        return output.view(*sampling_locations.shape[:3], value.shape[-1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor) -> tuple:
        value, weights, attention_weights = ctx.saved_tensors
        corners = ctx.corners
        batch, num_value, channels = value.shape
        grad_output = grad_output.reshape(-1, channels).contiguous()  # (B*Q*H, C)
        grad_value = grad_locations = grad_weights = None
        if ctx.needs_input_grad[0]:
            # Transposed gather: every memory cell sums the output gradients of the bags
            # that read it; one bag per cell in cell order, empty bags give zero rows.
            cells, order = corners.indices.reshape(-1).sort()
            counts = torch.bincount(cells, minlength=batch * num_value)
            del cells  # keep the peak low: the gradient below is as large as the memory
            sorted_weights = weights.reshape(-1)[order]
            bags = order.div_(weights[0, 0, 0].numel(), rounding_mode='floor')
            grad_value = F.embedding_bag(
                bags,
                grad_output,
                counts.cumsum(0) - counts,  # where each cell's bag starts
                per_sample_weights=sorted_weights,
                mode='sum').view(batch, num_value, channels)
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            dots = _corner_dots(value, grad_output, corners.indices) * corners.valid
            if ctx.needs_input_grad[3]:
                grad_weights = (dots * corners.bilinear).sum(-1).to(attention_weights.dtype)
            if ctx.needs_input_grad[2]:
                # derivatives of the bilinear weights with respect to frac_x and frac_y
                d00, d10, d01, d11 = dots.unbind(-1)
                fx, fy = corners.frac_x, corners.frac_y
                grad_fx = (d10 - d00) * (1 - fy) + (d11 - d01) * fy
                grad_fy = (d01 - d00) * (1 - fx) + (d11 - d10) * fx
                grad_locations = torch.stack((grad_fx * corners.widths, grad_fy * corners.heights),
                                             dim=-1) * attention_weights.unsqueeze(-1)
                grad_locations = grad_locations.to(ctx.location_dtype)
        return grad_value, None, grad_locations, grad_weights


def _emsda_sampling_autograd(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                             attention_weights: Tensor) -> Tensor:
    """:func:`emsda_sampling` differentiated by autograd through ``embedding_bag``."""
    corners = _bilinear_corners(spatial_shapes, sampling_locations, value.shape[1])
    weights = (corners.bilinear * attention_weights.unsqueeze(-1)).to(value.dtype)
    output = _weighted_gather(value, corners.indices, weights)
    return output.view(*sampling_locations.shape[:3], value.shape[-1])


def emsda_sampling(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                   attention_weights: Tensor) -> Tensor:
    """Attention-weighted bilinear samples of a shared multi-scale memory, per head.

    The single entry point of the op: it picks the hand-written CPU kernel, autograd through
    ``embedding_bag`` or, while exporting to ONNX, the Gather form (see the module
    docstring).

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
    if torch.onnx.is_in_onnx_export():  # checks its own shapes, without tracer warnings
        return emsda_sampling_gather(value, spatial_shapes, sampling_locations, attention_weights)
    num_value = value.shape[1]
    num_levels = sampling_locations.shape[3]
    if spatial_shapes.shape != (num_levels, 2):
        raise ValueError(f'spatial_shapes must be ({num_levels}, 2) for {num_levels} levels, '
                         f'got {tuple(spatial_shapes.shape)}')
    if int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()) != num_value:
        raise ValueError(f'value has {num_value} tokens but spatial_shapes '
                         f'{spatial_shapes.tolist()} describe a different number; flatten every '
                         'level of the memory in order')
    spatial_shapes = spatial_shapes.to(sampling_locations.device)
    if value.device.type == 'cpu' and value.dtype in SPARSE_DTYPES:
        return _EMSDASamplingCPU.apply(value, spatial_shapes, sampling_locations, attention_weights)
    return _emsda_sampling_autograd(value, spatial_shapes, sampling_locations, attention_weights)
