"""``emsda_sampling`` against a slow loop and against ``grid_sample``, forward and gradients."""
import math

import pytest
import torch
import torch.nn.functional as F

from poseur_mm.ops import emsda_sampling

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


def grid_sample_sampling(value, spatial_shapes, locations, weights):
    """The same quantity with ``F.grid_sample``, one call per level and head."""
    batch, num_queries, num_heads, _, num_points, _ = locations.shape
    out = value.new_zeros(batch, num_queries, num_heads, value.shape[-1])
    start = 0
    for lvl, (height, width) in enumerate(spatial_shapes.tolist()):
        # (B, H_l * W_l, C) -> (B, C, H_l, W_l)
        level = value[:, start:start + height * width].transpose(1, 2).reshape(
            batch, -1, height, width)
        start += height * width
        for h in range(num_heads):
            grid = 2 * locations[:, :, h, lvl] - 1  # (B, Q, P, 2) in [-1, 1]
            sampled = F.grid_sample(level, grid, mode='bilinear', padding_mode='zeros',
                                    align_corners=False)  # (B, C, Q, P)
            out[:, :, h] += (sampled * weights[:, None, :, h, lvl]).sum(-1).transpose(1, 2)
    return out


def make_inputs(batch=2, num_queries=3, num_heads=2, num_points=2, channels=4,
                dtype=torch.float64, spread=(-0.3, 1.3), seed=0):
    """Random memory, locations partly outside the maps (``spread``) and weights."""
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.tensor(SHAPES, dtype=torch.long)
    num_value = int((shapes[:, 0] * shapes[:, 1]).sum())
    value = torch.randn(batch, num_value, channels, generator=gen, dtype=dtype)
    low, high = spread
    locations = low + (high - low) * torch.rand(
        batch, num_queries, num_heads, len(SHAPES), num_points, 2, generator=gen, dtype=dtype)
    weights = torch.rand(batch, num_queries, num_heads, len(SHAPES), num_points, generator=gen,
                         dtype=dtype)
    return value, shapes, locations, weights


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_forward_matches_loop_and_grid_sample(dtype):
    value, shapes, locations, weights = make_inputs(dtype=dtype)
    out = emsda_sampling(value, shapes, locations, weights)
    assert out.shape == (2, 3, 2, 4)
    assert out.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out.double(), loop_sampling(value, shapes, locations, weights),
                               **tol)
    torch.testing.assert_close(out, grid_sample_sampling(value, shapes, locations, weights),
                               **tol)


def test_pixel_centres_and_corners_follow_align_corners_false():
    """A pixel centre reads that pixel exactly; the map's corner (0, 0) reads a quarter of
    the corner pixel (three of its neighbours are outside)."""
    value, shapes, _, _ = make_inputs(batch=1)
    height, width = SHAPES[0]
    row, col = 2, 3
    centre = torch.tensor([(col + 0.5) / width, (row + 0.5) / height], dtype=torch.float64)
    corner = torch.zeros(2, dtype=torch.float64)
    locations = torch.zeros(1, 2, 1, len(SHAPES), 1, 2, dtype=torch.float64)
    locations[0, 0, 0, 0, 0] = centre
    locations[0, 1, 0, 0, 0] = corner
    locations[..., 1:, :, :] = 1e6  # other levels: far outside, contribute nothing
    weights = torch.ones(1, 2, 1, len(SHAPES), 1, dtype=torch.float64)
    out = emsda_sampling(value, shapes, locations, weights)
    torch.testing.assert_close(out[0, 0, 0], value[0, row * width + col])
    torch.testing.assert_close(out[0, 1, 0], value[0, 0] / 4)


@pytest.mark.parametrize('far', [1e6, -1e6, 1.5, -0.5])
def test_points_outside_the_maps_read_zero(far):
    value, shapes, locations, weights = make_inputs()
    locations[..., 0] = far  # every x outside every map (by at least one pixel)
    out = emsda_sampling(value, shapes, locations, weights)
    assert torch.isfinite(out).all()
    assert out.abs().max() == 0
    # only one coordinate far out: still nothing, whichever way the other one points
    value, shapes, locations, weights = make_inputs(spread=(0, 1))
    locations[..., 1] = far
    assert emsda_sampling(value, shapes, locations, weights).abs().max() == 0


def test_far_points_have_zero_gradients_and_do_not_disturb_others():
    value, shapes, locations, weights = make_inputs()
    far = locations.clone()
    far[:, 0] = 1e6  # query 0 far out, the others unchanged
    value.requires_grad_(True)
    far.requires_grad_(True)
    weights.requires_grad_(True)
    out = emsda_sampling(value, shapes, far, weights)
    out.sum().backward()
    assert far.grad[:, 0].abs().max() == 0
    assert weights.grad[:, 0].abs().max() == 0
    assert torch.isfinite(value.grad).all()
    torch.testing.assert_close(out[:, 1:],
                               grid_sample_sampling(value, shapes, locations, weights)[:, 1:])


def test_gradcheck_value_locations_weights():
    # locations inside and around the maps, away from pixel-grid kinks by construction of
    # random draws; tiny sizes keep the numerical Jacobian cheap
    value, shapes, locations, weights = make_inputs(batch=1, num_queries=2, num_heads=2,
                                                    num_points=2, channels=3)
    inputs = (value.requires_grad_(), shapes, locations.requires_grad_(),
              weights.requires_grad_())
    assert torch.autograd.gradcheck(emsda_sampling, inputs, eps=1e-6, atol=1e-6)


def test_gradients_match_grid_sample():
    """float32 gradients on a larger draw, against autograd through ``grid_sample``."""
    inputs = make_inputs(batch=2, num_queries=5, num_heads=4, num_points=3, channels=8,
                         dtype=torch.float32, seed=1)
    grads = []
    for fn in (emsda_sampling, grid_sample_sampling):
        value, shapes, locations, weights = (t.clone() for t in inputs)
        for t in (value, locations, weights):
            t.requires_grad_(True)
        upstream = torch.linspace(-1, 1, 2 * 5 * 4 * 8).view(2, 5, 4, 8)
        (fn(value, shapes, locations, weights) * upstream).sum().backward()
        grads.append((value.grad, locations.grad, weights.grad))
    for ours, reference in zip(*grads):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)


def test_half_precision_memory_takes_the_autograd_path_and_agrees():
    value, shapes, locations, weights = make_inputs(dtype=torch.float32, seed=2)
    out = emsda_sampling(value.bfloat16(), shapes, locations, weights)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), grid_sample_sampling(value, shapes, locations,
                                                                 weights), rtol=2e-2, atol=2e-2)


def test_wrong_spatial_shapes_name_the_problem():
    value, shapes, locations, weights = make_inputs()
    with pytest.raises(ValueError, match='tokens but spatial_shapes'):
        emsda_sampling(value[:, 1:], shapes, locations, weights)
    with pytest.raises(ValueError, match=r'spatial_shapes must be \(3, 2\)'):
        emsda_sampling(value, shapes[:2], locations, weights)
