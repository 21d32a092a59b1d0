"""EMSDA sampling kernels against mmcv's per-head grid_sample formulation.

The reference copies the memory once per head and samples it with ``grid_sample``
(mmcv's ``multi_scale_deformable_attn_pytorch``), an implementation that shares no code
with :mod:`poseur_mm.ops.emsda`. Both kernels are checked: the hand-written CPU backward
(what ``emsda_sampling`` runs for float32/float64 on CPU) and autograd through
``embedding_bag`` (other devices, half precision).
"""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from poseur_mm.ops.emsda import _emsda_sampling_autograd, emsda_sampling
from tools.analysis.emsda_reference import per_head_copy_sampling

KERNELS = {'cpu-backward': emsda_sampling, 'autograd': _emsda_sampling_autograd}
# absolute tolerance relative to the largest reference entry
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def make_inputs(batch, queries, heads, levels, points, channels, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.tensor(levels, dtype=torch.long)
    num_value = int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum())
    value = torch.randn(batch, num_value, channels, generator=gen, dtype=dtype)
    # 20% margin on each side: points inside, on the border and outside the maps
    locations = torch.rand(
        batch, queries, heads, len(levels), points, 2, generator=gen, dtype=dtype) * 1.4 - 0.2
    weights = torch.randn(batch, queries, heads, len(levels), points, generator=gen, dtype=dtype)
    return value, spatial_shapes, locations, weights


def outputs_and_grads(fn, value, spatial_shapes, locations, weights, needs_grad, seed):
    """Output and the gradients of the inputs flagged in ``needs_grad`` (None for others)."""
    leaves = [
        t.detach().requires_grad_(flag) for t, flag in zip((value, locations, weights), needs_grad)
    ]
    output = fn(leaves[0], spatial_shapes, leaves[1], leaves[2])
    grad_output = torch.randn(
        output.shape, generator=torch.Generator().manual_seed(seed), dtype=output.dtype)
    if any(needs_grad):
        output.backward(grad_output)
    return [output.detach()] + [leaf.grad for leaf in leaves]


def assert_matches_reference(kernel, inputs, needs_grad, seed):
    dtype = inputs[0].dtype
    expected = outputs_and_grads(per_head_copy_sampling, *inputs, needs_grad, seed)
    actual = outputs_and_grads(KERNELS[kernel], *inputs, needs_grad, seed)
    for name, got, want in zip(('output', 'value', 'locations', 'weights'), actual, expected):
        if want is None:
            assert got is None, name
            continue
        assert got.shape == want.shape and got.dtype == want.dtype, name
        tol = TOLERANCE[dtype] * max(1.0, want.abs().max().item())
        torch.testing.assert_close(got, want, rtol=0, atol=tol, msg=f'{kernel}: {name}')


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
    assert_matches_reference(kernel, inputs, (True, True, True), seed=1)


@pytest.mark.parametrize('kernel', sorted(KERNELS))
def test_far_and_corner_points(kernel):
    value, spatial_shapes, locations, weights = make_inputs(
        2, 3, 2, [(4, 5), (2, 3)], 4, 3, torch.float64, seed=3)
    # far outside (must read zeros and get zero gradient), and the maps' exact corners
    locations[0, 0, :, :, 0] = torch.tensor([1e6, -1e6], dtype=torch.float64)
    locations[0, 1, :, :, 1] = torch.tensor([-1e9, 0.5], dtype=torch.float64)
    locations[1, 0, :, :, 2] = 0.0
    locations[1, 1, :, :, 3] = 1.0
    assert_matches_reference(
        kernel, (value, spatial_shapes, locations, weights), (True, True, True), seed=4)
    far = outputs_and_grads(
        KERNELS[kernel],
        value,
        spatial_shapes,
        locations[:1, :1, :, :, :1],
        weights[:1, :1, :, :, :1], (True, True, True),
        seed=5)
    assert far[0].abs().max() == 0 and far[2].abs().max() == 0 and far[3].abs().max() == 0


def test_cpu_backward_passes_gradcheck():
    value, spatial_shapes, locations, weights = make_inputs(
        1, 2, 2, [(3, 4), (2, 2)], 2, 3, torch.float64, seed=7)
    value.requires_grad_(), locations.requires_grad_(), weights.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda v, loc, w: emsda_sampling(v, spatial_shapes, loc, w), (value, locations, weights),
        eps=1e-6,
        atol=1e-6)


def test_bfloat16_memory_uses_autograd_kernel_and_stays_close():
    value, spatial_shapes, locations, weights = make_inputs(
        2, 4, 2, [(6, 5), (3, 3)], 2, 8, torch.float32, seed=9)
    low = outputs_and_grads(
        emsda_sampling,
        value.bfloat16(),
        spatial_shapes,
        locations,
        weights, (True, True, True),
        seed=10)
    full = outputs_and_grads(
        emsda_sampling, value, spatial_shapes, locations, weights, (True, True, True), seed=10)
    assert low[0].dtype == low[1].dtype == torch.bfloat16
    assert low[2].dtype == low[3].dtype == torch.float32
    for got, want in zip(low, full):
        scale = want.abs().max().item()
        torch.testing.assert_close(got.float(), want, rtol=0, atol=0.05 * scale)


def test_shape_errors_name_the_fix():
    value, spatial_shapes, locations, weights = make_inputs(
        1, 2, 2, [(3, 4), (2, 2)], 2, 3, torch.float32, seed=0)
    with pytest.raises(ValueError, match='flatten every level'):
        emsda_sampling(value[:, :-1], spatial_shapes, locations, weights)
    with pytest.raises(ValueError, match=r'spatial_shapes must be \(2, 2\)'):
        emsda_sampling(value, spatial_shapes[:1], locations, weights)
