"""EMSDA sampling: both kernels against independent references, forward and gradients;
edge points, dtypes, input errors, the ONNX form during export and CUDA parity.

The references share no code with :mod:`poseur_mm.ops.emsda`: a slow loop written from the
definition (here) and mmcv's per-head ``grid_sample`` formulation
(:func:`tools.analysis.emsda_reference.per_head_copy_sampling`). Two kernels are checked: the
hand-written CPU backward (what ``emsda_sampling`` runs for float32/float64 on CPU) and
autograd through ``embedding_bag`` (other devices, half precision).
"""
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from poseur_mm.ops import emsda_sampling
from poseur_mm.ops.emsda import _emsda_sampling_autograd
from tools.analysis.emsda_reference import per_head_copy_sampling

KERNELS = {'cpu-backward': emsda_sampling, 'autograd': _emsda_sampling_autograd}
# absolute tolerance relative to the largest reference entry
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
# non-square levels of different shapes, (H_l, W_l)
SHAPES = [(3, 5), (4, 2), (1, 3)]


def loop_sampling(value, spatial_shapes, locations, weights):
    """The obvious definition, one scalar at a time: pixel = u * W - 0.5 and each of the
    four neighbours contributes its bilinear weight if it lies inside its map."""
    batch, num_queries, num_heads, num_levels, num_points, _ = locations.shape
    out = torch.zeros(batch, num_queries, num_heads, value.shape[-1], dtype=torch.float64)
    starts = [0]
    for height, width in spatial_shapes.tolist():
        starts.append(starts[-1] + height * width)
    for b in range(batch):
        for q in range(num_queries):
            for h in range(num_heads):
                for lvl, (height, width) in enumerate(spatial_shapes.tolist()):
                    for p in range(num_points):
                        u, v = locations[b, q, h, lvl, p].tolist()
                        x, y = u * width - 0.5, v * height - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        for xi, yi in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                            if 0 <= xi < width and 0 <= yi < height:
                                bilinear = (1 - abs(x - xi)) * (1 - abs(y - yi))
                                row = value[b, starts[lvl] + yi * width + xi].double()
                                out[b, q, h] += float(weights[b, q, h, lvl, p]) * bilinear * row
    return out


def make_inputs(batch=2,
                queries=3,
                heads=2,
                levels=SHAPES,
                points=2,
                channels=4,
                dtype=torch.float64,
                seed=0,
                spread=(-0.2, 1.2)):
    """Random memory, locations partly outside the maps (``spread``) and signed weights."""
    gen = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.tensor(levels, dtype=torch.long)
    num_value = int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum())
    value = torch.randn(batch, num_value, channels, generator=gen, dtype=dtype)
    low, high = spread
    locations = low + (high - low) * torch.rand(
        batch, queries, heads, len(levels), points, 2, generator=gen, dtype=dtype)
    weights = torch.randn(batch, queries, heads, len(levels), points, generator=gen, dtype=dtype)
    return value, spatial_shapes, locations, weights


def outputs_and_grads(fn,
                      value,
                      spatial_shapes,
                      locations,
                      weights,
                      needs_grad=(True, ) * 3,
                      seed=0):
    """Output and the gradients of the inputs flagged in ``needs_grad`` (None for others)."""
    leaves = [
        t.detach().requires_grad_(flag) for t, flag in zip((value, locations, weights), needs_grad)
    ]
    output = fn(leaves[0], spatial_shapes, leaves[1], leaves[2])
    grad_output = torch.randn(
        output.shape, generator=torch.Generator().manual_seed(seed), dtype=output.dtype)
    if any(needs_grad):
        output.backward(grad_output.to(output.device))
    return [output.detach()] + [leaf.grad for leaf in leaves]


def assert_close_scaled(got, want, rel, msg):
    """``got`` equals ``want`` up to ``rel`` times the largest entry of ``want``."""
    tol = rel * max(1.0, want.abs().max().item())
    torch.testing.assert_close(got, want, rtol=0, atol=tol, msg=msg)


def assert_matches_reference(kernel, inputs, needs_grad=(True, ) * 3, seed=0):
    dtype = inputs[0].dtype
    expected = outputs_and_grads(per_head_copy_sampling, *inputs, needs_grad, seed)
    actual = outputs_and_grads(KERNELS[kernel], *inputs, needs_grad, seed)
    for name, got, want in zip(('output', 'value', 'locations', 'weights'), actual, expected):
        if want is None:
            assert got is None, name
            continue
        assert got.shape == want.shape and got.dtype == want.dtype, name
        assert_close_scaled(got, want, TOLERANCE[dtype], f'{kernel}: {name}')


shapes = st.fixed_dictionaries(
    dict(
        batch=st.integers(1, 3),
        queries=st.integers(1, 5),
        heads=st.integers(1, 3),
        levels=st.lists(st.tuples(st.integers(1, 7), st.integers(1, 7)), min_size=1, max_size=3),
        points=st.integers(1, 3),
        channels=st.integers(1, 6)))


@pytest.mark.parametrize('kernel', sorted(KERNELS))
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@settings(max_examples=40, deadline=None)
@given(
    shape=shapes,
    seed=st.integers(0, 2**31 - 1),
    needs_grad=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_kernels_match_grid_sample_reference(kernel, dtype, shape, seed, needs_grad):
    inputs = make_inputs(**shape, dtype=dtype, seed=seed)
    assert_matches_reference(kernel, inputs, needs_grad, seed)


@pytest.mark.parametrize('kernel', sorted(KERNELS))
def test_poseur_sizes_match_reference(kernel):
    # 256x192 levels, 8 heads, 4 points, noisy groups (Q = 68), float32
    inputs = make_inputs(
        2, 68, 8, [(64, 48), (32, 24), (16, 12), (8, 6)], 4, 32, torch.float32, seed=0)
    assert_matches_reference(kernel, inputs, seed=1)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_forward_matches_the_loop_definition(dtype):
    value, spatial_shapes, locations, weights = make_inputs(dtype=dtype, spread=(-0.3, 1.3))
    out = emsda_sampling(value, spatial_shapes, locations, weights)
    assert out.shape == (2, 3, 2, 4)
    assert out.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.double(), loop_sampling(value, spatial_shapes, locations,
                                                           weights), **tol)


def test_pixel_centres_and_corners_follow_align_corners_false():
    """A pixel centre reads that pixel exactly; the map's corner (0, 0) reads a quarter of
    the corner pixel (three of its neighbours are outside)."""
    value, spatial_shapes, _, _ = make_inputs(batch=1)
    height, width = SHAPES[0]
    row, col = 2, 3
    centre = torch.tensor([(col + 0.5) / width, (row + 0.5) / height], dtype=torch.float64)
    locations = torch.zeros(1, 2, 1, len(SHAPES), 1, 2, dtype=torch.float64)
    locations[0, 0, 0, 0, 0] = centre
    locations[0, 1, 0, 0, 0] = 0.0  # the corner
    locations[..., 1:, :, :] = 1e6  # other levels: far outside, contribute nothing
    weights = torch.ones(1, 2, 1, len(SHAPES), 1, dtype=torch.float64)
    out = emsda_sampling(value, spatial_shapes, locations, weights)
    torch.testing.assert_close(out[0, 0, 0], value[0, row * width + col])
    torch.testing.assert_close(out[0, 1, 0], value[0, 0] / 4)


@pytest.mark.parametrize('far', [1e6, -1e6, 1.5, -0.5])
def test_points_outside_the_maps_read_zero(far):
    value, spatial_shapes, locations, weights = make_inputs(spread=(-0.3, 1.3))
    locations[..., 0] = far  # every x outside every map (by at least one pixel)
    out = emsda_sampling(value, spatial_shapes, locations, weights)
    assert torch.isfinite(out).all()
    assert out.abs().max() == 0
    # only one coordinate far out: still nothing, whichever way the other one points
    value, spatial_shapes, locations, weights = make_inputs(spread=(0, 1))
    locations[..., 1] = far
    assert emsda_sampling(value, spatial_shapes, locations, weights).abs().max() == 0


@pytest.mark.parametrize('kernel', sorted(KERNELS))
def test_far_and_corner_points(kernel):
    value, spatial_shapes, locations, weights = make_inputs(
        2, 3, 2, [(4, 5), (2, 3)], 4, 3, torch.float64, seed=3)
    original = locations.clone()
    # far outside (must read zeros and get zero gradient), and the maps' exact corners
    locations[0, 0, :, :, 0] = torch.tensor([1e6, -1e6], dtype=torch.float64)
    locations[0, 1, :, :, 1] = torch.tensor([-1e9, 0.5], dtype=torch.float64)
    locations[1, 0, :, :, 2] = 0.0
    locations[1, 1, :, :, 3] = 1.0
    assert_matches_reference(kernel, (value, spatial_shapes, locations, weights), seed=4)
    far = outputs_and_grads(
        KERNELS[kernel],
        value,
        spatial_shapes,
        locations[:1, :1, :, :, :1],
        weights[:1, :1, :, :, :1],
        seed=5)
    assert far[0].abs().max() == 0 and far[2].abs().max() == 0 and far[3].abs().max() == 0
    # a whole query far out: zero output and gradients for it, the other queries unchanged
    one_far = original.clone()
    one_far[:, 0] = 1e6
    out, grad_value, grad_locations, grad_weights = outputs_and_grads(
        KERNELS[kernel], value, spatial_shapes, one_far, weights, seed=6)
    assert out[:, 0].abs().max() == 0
    assert grad_locations[:, 0].abs().max() == 0 and grad_weights[:, 0].abs().max() == 0
    assert torch.isfinite(grad_value).all()
    reference = per_head_copy_sampling(value, spatial_shapes, original, weights)
    torch.testing.assert_close(out[:, 1:], reference[:, 1:])


@pytest.mark.parametrize('kernel', sorted(KERNELS))
def test_kernel_passes_gradcheck(kernel):
    # tiny sizes keep the numerical Jacobian cheap; random points avoid the pixel-grid kinks
    value, spatial_shapes, locations, weights = make_inputs(
        1, 2, 2, [(3, 4), (2, 2)], 2, 3, torch.float64, seed=7)
    fn = KERNELS[kernel]
    assert torch.autograd.gradcheck(
        lambda v, loc, w: fn(v, spatial_shapes, loc, w),
        (value.requires_grad_(), locations.requires_grad_(), weights.requires_grad_()),
        eps=1e-6,
        atol=1e-6)


def test_bfloat16_memory_uses_autograd_kernel_and_stays_close():
    value, spatial_shapes, locations, weights = make_inputs(
        2, 4, 2, [(6, 5), (3, 3)], 2, 8, torch.float32, seed=9)
    low = outputs_and_grads(
        emsda_sampling, value.bfloat16(), spatial_shapes, locations, weights, seed=10)
    full = outputs_and_grads(
        per_head_copy_sampling, value, spatial_shapes, locations, weights, seed=10)
    # the memory and its gradient stay bfloat16, the float32 locations and weights float32
    assert low[0].dtype == low[1].dtype == torch.bfloat16
    assert low[2].dtype == low[3].dtype == torch.float32
    torch.testing.assert_close(low[0].float(), full[0], rtol=2e-2, atol=2e-2)
    for name, got, want in zip(('output', 'value', 'locations', 'weights'), low, full):
        assert_close_scaled(got.float(), want, 0.05, f'bfloat16: {name}')


def test_shape_errors_name_the_fix():
    value, spatial_shapes, locations, weights = make_inputs(
        1, 2, 2, [(3, 4), (2, 2)], 2, 3, torch.float32, seed=0)
    with pytest.raises(ValueError, match='tokens but spatial_shapes .* flatten every level'):
        emsda_sampling(value[:, :-1], spatial_shapes, locations, weights)
    with pytest.raises(ValueError, match=r'spatial_shapes must be \(2, 2\) for 2 levels'):
        emsda_sampling(value, spatial_shapes[:1], locations, weights)


class Sampling(nn.Module):
    """``emsda_sampling`` with fixed level sizes, as a fixed-input-size export sees it."""

    def __init__(self, spatial_shapes):
        super().__init__()
        self.register_buffer('spatial_shapes', spatial_shapes)

    def forward(self, value, locations, weights):
        return emsda_sampling(value, self.spatial_shapes, locations, weights)


def test_export_takes_the_gather_form(tmp_path):
    """``embedding_bag`` has no standard ONNX operator: during export the dispatcher must
    emit the Gather + MatMul form, and the graph must compute what the eager op computes."""
    value, spatial_shapes, locations, weights = make_inputs(dtype=torch.float32, seed=11)
    path = str(tmp_path / 'emsda.onnx')
    torch.onnx.export(
        Sampling(spatial_shapes), (value, locations, weights), path, opset_version=17, dynamo=False)
    graph = onnx.load(path)
    op_types = {node.op_type for node in graph.graph.node}
    assert {'Gather', 'MatMul'} <= op_types and 'GridSample' not in op_types
    assert {node.domain for node in graph.graph.node} <= {'', 'ai.onnx'}
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), (value, locations, weights))}
    expected = emsda_sampling(value, spatial_shapes, locations, weights)
    np.testing.assert_allclose(session.run(None, feeds)[0], expected.numpy(), rtol=0, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    """The CUDA path (autograd through ``embedding_bag``) against the CPU kernel, forward
    and all gradients, at Poseur's level sizes."""
    inputs = make_inputs(2, 68, 8, [(64, 48), (32, 24), (16, 12), (8, 6)], 4, 32, dtype, seed=12)
    cpu = outputs_and_grads(emsda_sampling, *inputs, seed=13)
    value, spatial_shapes, locations, weights = (t.cuda() for t in inputs)
    cuda = outputs_and_grads(emsda_sampling, value, spatial_shapes, locations, weights, seed=13)
    for name, got, want in zip(('output', 'value', 'locations', 'weights'), cuda, cpu):
        assert got.device.type == 'cuda'
        assert_close_scaled(got.cpu(), want, TOLERANCE[dtype], f'cuda: {name}')
