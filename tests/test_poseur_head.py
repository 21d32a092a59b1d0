"""PoseurHead: shapes, group isolation, initialisation, errors, predict and flip fusion."""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample
from torch import nn

import poseur_mm  # noqa: F401  (registers the modules)
from poseur_mm.models.layers import EMSDAttention
from poseur_mm.models.layers.positional_encoding import grid_encoding

INPUT_SIZE = (48, 64)  # (w, h): levels at strides 4..32 below
LEVEL_SHAPES = [(16, 12), (8, 6), (4, 3), (2, 2)]
# COCO's left/right pairs
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
# the crop's extent (w, h) in image pixels, as TopdownAffine records it (not square, and
# another aspect than INPUT_SIZE would have: the scale factors differ per axis)
INPUT_SCALE = np.array([150., 240.], dtype=np.float32)


def small_head(num_joints=17, embed_dims=32, **kwargs):
    cfg = dict(type='PoseurHead', in_channels=embed_dims, embed_dims=embed_dims,
               num_joints=num_joints,
               query_decoder=dict(num_layers=2, layer_cfg=dict(num_heads=4, ffn_dims=64)),
               decoder=dict(type='RegressionLabel', input_size=INPUT_SIZE))
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def feats(batch=2, channels=32, shapes=LEVEL_SHAPES, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, channels, h, w, generator=gen) for h, w in shapes)


def samples(batch=2, num_joints=17, flip_indices=COCO_FLIP, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        sample = PoseDataSample(metainfo=dict(input_size=INPUT_SIZE, input_scale=INPUT_SCALE,
                                              flip_indices=flip_indices))
        sample.gt_instance_labels = InstanceData(
            keypoint_labels=torch.rand(1, num_joints, 2, generator=gen),
            keypoint_weights=torch.ones(1, num_joints))
        out.append(sample)
    return out


def as_if_trained(head):
    """Large delta outputs, so that coordinates clearly depend on the queries."""
    decoder = head.query_decoder
    for branch in (*decoder.delta_branches, *decoder.out_delta_branches):
        nn.init.normal_(branch[-1].weight, std=0.1)


def disable_dropout(module):
    for m in module.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        elif isinstance(m, nn.MultiheadAttention):
            m.dropout = 0.0


@pytest.mark.parametrize('num_joints', [17, 16, 133])
def test_output_shapes_train_and_eval(num_joints):
    torch.manual_seed(0)
    head = small_head(num_joints)
    x = feats()
    head.train()
    out = head.forward_all(x)
    assert out['num_groups'] == 4
    assert out['coarse']['coords'].shape == (2, num_joints, 2)
    assert out['coarse']['sigma_logits'].shape == (2, num_joints, 2)
    # stacked per layer: (num_layers, B, G * K, 2)
    assert out['layers'].coords.shape == out['layers'].sigma_logits.shape == \
        (2, 2, 4 * num_joints, 2)
    losses = head.loss(x, samples(num_joints=num_joints))
    assert set(losses) == {'loss_coarse', 'loss_dec0', 'loss_dec1', 'acc_pose'}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())

    head.eval()
    with torch.no_grad():
        out = head.forward_all(x)
        assert out['num_groups'] == 1
        for tensor in [*out['layers'].coords, *out['layers'].sigma_logits]:
            assert tensor.shape == (2, num_joints, 2)
        assert head(x).shape == (2, num_joints, 4)
        preds = head.predict(x, samples(num_joints=num_joints))
    assert len(preds) == 2
    for pred in preds:
        assert pred.keypoints.shape == (1, num_joints, 2)
        assert pred.keypoint_scores.shape == (1, num_joints)


def test_memory_matches_a_per_token_reference():
    """Memory row of level l, pixel (y, x): the feature vector at (y, x) plus that pixel's
    sine encoding plus level l's embedding, levels in order; gradients reach the features
    and the level embeddings as through the per-token sum."""
    torch.manual_seed(0)
    head = small_head()
    x = tuple(f.requires_grad_() for f in feats())
    out = head.build_memory(x)
    assert out['spatial_shapes'].tolist() == [list(shape) for shape in LEVEL_SHAPES]

    rows = []
    for level, feat in enumerate(x):
        height, width = feat.shape[-2:]
        pos = grid_encoding(height, width, head.embed_dims)  # (H*W, C), row-major pixels
        for y in range(height):
            for x_ in range(width):
                rows.append(feat[:, :, y, x_] + pos[y * width + x_] + head.level_embed[level])
    expected = torch.stack(rows, dim=1)
    torch.testing.assert_close(out['memory'], expected)

    weights = torch.randn_like(expected)
    grads = torch.autograd.grad((out['memory'] * weights).sum(), (*x, head.level_embed))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (*x, head.level_embed))
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)


def test_published_size_shapes():
    """Default head (C=256, 6 layers, 8 heads) on the 256x192 ResNet level shapes."""
    torch.manual_seed(0)
    head = MODELS.build(dict(type='PoseurHead', in_channels=256, num_joints=17))
    head.train()
    x = feats(batch=1, channels=256, shapes=[(64, 48), (32, 24), (16, 12), (8, 6)])
    memory = head.build_memory(x)
    assert memory['memory'].shape == (1, 4080, 256)
    assert memory['spatial_shapes'].tolist() == [[64, 48], [32, 24], [16, 12], [8, 6]]
    out = head.forward_all(x)
    assert len(out['layers'].coords) == 6
    assert out['layers'].coords[-1].shape == (1, 68, 2)


def test_noisy_groups_never_change_the_real_group():
    """Decoder called directly with reference points whose noisy groups differ: the real
    group's outputs are identical, the noisy ones are not; with the groups merged into one
    attention group, the same change does leak (so the check can fail)."""
    torch.manual_seed(0)
    head = small_head()
    head.train()
    disable_dropout(head)
    as_if_trained(head)
    x = feats()
    memory = head.build_memory(x)
    coarse = head.predict_coarse(x)['coords'].detach()
    refs = head.add_noisy_groups(coarse)  # (B, 4K, 2)
    changed = refs.clone()
    changed[:, 17:] = torch.rand_like(changed[:, 17:])

    def run(reference_points, num_groups=4):
        with torch.no_grad():
            queries = head.keypoint_encoder(reference_points)
            return head.query_decoder(reference_points=reference_points, num_groups=num_groups,
                                      **queries, **memory)

    base, other = run(refs), run(changed)
    for key in ('coords', 'sigma_logits'):
        for a, b in zip(getattr(base, key), getattr(other, key)):
            torch.testing.assert_close(a[:, :17], b[:, :17], rtol=1e-6, atol=1e-6)
            assert (a[:, 17:] - b[:, 17:]).abs().max() > 1e-3
    merged, merged_other = run(refs, 1), run(changed, 1)
    assert (merged.coords[-1][:, :17] - merged_other.coords[-1][:, :17]).abs().max() > 1e-4


def test_prediction_computes_only_the_last_layers_outputs():
    """``forward`` (predict, ONNX export) runs every decoder layer but only the last
    layer's out_delta and sigma branches, and returns exactly what the all-layer pass
    returns for that layer."""
    torch.manual_seed(0)
    head = small_head()
    as_if_trained(head)
    head.eval()
    x = feats()
    decoder = head.query_decoder
    called = []
    for name in ('delta_branches', 'out_delta_branches', 'sigma_branches'):
        for index, branch in enumerate(getattr(decoder, name)):
            branch.register_forward_hook(
                lambda *args, key=(name, index): called.append(key))
    with torch.no_grad():
        everything = head.forward_all(x)['layers']
        called.clear()
        output = head(x)
    last = len(decoder.layers) - 1
    assert sorted(called) == sorted([('delta_branches', i) for i in range(last + 1)] +
                                    [('out_delta_branches', last), ('sigma_branches', last)])
    assert torch.equal(output, torch.cat((everything.coords[-1], everything.sigma_logits[-1]),
                                         dim=-1))


def test_real_group_matches_eval_mode_when_dropout_is_off():
    """Training adds random noisy groups; the real group's outputs equal the eval-mode ones."""
    torch.manual_seed(0)
    head = small_head()
    as_if_trained(head)
    disable_dropout(head)
    x = feats()
    head.eval()
    with torch.no_grad():
        reference = head.forward_all(x)
        head.train()
        for seed in (1, 2):
            torch.manual_seed(seed)
            out = head.forward_all(x)
            assert out['layers'].coords[0].shape[1] == 68
            for key in ('coords', 'sigma_logits'):
                for a, b in zip(getattr(reference['layers'], key), getattr(out['layers'], key)):
                    torch.testing.assert_close(b[:, :17], a, rtol=1e-6, atol=1e-6)


def test_noisy_groups_perturb_about_four_points_per_group_within_range():
    torch.manual_seed(0)
    head = small_head()
    coarse = torch.rand(3, 17, 2)
    refs = head.add_noisy_groups(coarse)
    assert refs.shape == (3, 68, 2)
    torch.testing.assert_close(refs[:, :17], coarse)
    moved = (refs[:, 17:] != coarse.repeat(1, 3, 1)).any(-1)  # (B, 3K)
    # the same 12 slots in every sample
    assert (moved.sum(-1) == 12).all() and (moved == moved[:1]).all()
    assert refs.min() >= -0.7 and refs.max() <= 1.7
    assert (refs[:, 17:] - coarse.repeat(1, 3, 1)).abs().max() <= 1.0


# The release's effective initialisation per parameter family, as measured on the release's
# own modules (shared/design/release_checkpoints.md section 3; ResNet-50 setting: C = 256,
# K = 17, 6 decoder layers, 8 heads, 4 levels and points): (std, mean) of each family.
RELEASE_INIT_STD = {
    'coarse_coord.weight': 0.083, 'coarse_sigma.weight': 0.083,
    'coarse_coord.bias': 0.036, 'coarse_sigma.bias': 0.036,
    'level_embed': 1.0,
    'keypoint_encoder.content_proj.weight': 0.051,
    'keypoint_encoder.class_embed.weight': 0.085,
    'cross_attn.sampling_offsets.weight': 0.0625,
    'cross_attn.attention_weights.weight': 0.072,
    'cross_attn.head_proj_weight': 0.031,
    'cross_attn.head_proj_bias': 0.22,
    'delta_branches.0.0.weight': 0.036, 'delta_branches.0.4.weight': 0.036,
    'sigma_branches.0.0.weight': 0.036, 'sigma_branches.0.2.weight': 0.00089,
    'flow.s.0.0.weight': 0.41, 'flow.s.0.2.weight': 0.072, 'flow.t.0.4.weight': 0.072,
}


@pytest.fixture(scope='module')
def published_head():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='PoseurHead', in_channels=256, num_joints=17,
                             decoder=dict(type='RegressionLabel', input_size=(192, 256))))
    head.init_weights()
    return head


@pytest.mark.parametrize('family', sorted(RELEASE_INIT_STD))
def test_init_matches_the_release_per_family(published_head, family):
    """Every parameter family starts with the spread the release's effectively has."""
    params = dict(published_head.named_parameters())
    matches = [name for name in params if name.endswith(family)]
    assert matches, family
    for name in matches:
        value = params[name].detach()
        assert value.std().item() == pytest.approx(RELEASE_INIT_STD[family], rel=0.15), name
        assert abs(value.mean().item()) < 0.2 * RELEASE_INIT_STD[family] + 0.01, name


def test_init_offset_grid_zero_biases_and_identical_branches(published_head):
    """EMSDA: radial-grid offset biases, zero attention and output biases. Branches: one
    draw shared by all delta/out_delta branches and one by all sigma branches, as the
    release's deep copies of one module; decoder layers drawn separately."""
    decoder = published_head.query_decoder
    for attn in (m for m in published_head.modules() if isinstance(m, EMSDAttention)):
        heads, levels, points = attn.num_heads, attn.num_levels, attn.num_points
        assert attn.attention_weights.bias.abs().max() == 0
        assert attn.output_proj.bias.abs().max() == 0
        bias = attn.sampling_offsets.bias.view(heads, levels, points, 2)
        for h in range(heads):
            angle = 2 * math.pi * h / heads
            cos, sin = math.cos(angle), math.sin(angle)
            norm = max(abs(cos), abs(sin))
            for p in range(points):
                expected = torch.tensor([cos / norm * (p + 1), sin / norm * (p + 1)])
                for lvl in range(levels):
                    torch.testing.assert_close(bias[h, lvl, p], expected)
    coord = [*decoder.delta_branches, *decoder.out_delta_branches]
    for branches in (coord, decoder.sigma_branches):
        for branch in branches[1:]:
            for mine, first in zip(branch.parameters(), branches[0].parameters()):
                assert torch.equal(mine, first)
    assert not torch.equal(coord[0][0].weight, decoder.sigma_branches[0][0].weight)
    layers = decoder.layers
    assert not torch.equal(layers[0].ffn[0].weight, layers[1].ffn[0].weight)


def test_init_survives_a_head_init_cfg():
    """An init_cfg on every Linear (as MMPose's RLE configs set) must not undo the
    submodules' own init: EMSDA's grid, the small last sigma layer, the flows' default."""
    head = small_head(init_cfg=dict(type='Normal', layer='Linear', std=0.01))
    for attn in (m for m in head.modules() if isinstance(m, EMSDAttention)):
        assert attn.sampling_offsets.bias.abs().max() > 0.5
    for branch in head.query_decoder.sigma_branches:
        assert branch[-1].weight.std() < 0.01 * 0.5
    assert head.coarse_loss.flow.s[0][0].weight.std() > 0.3



@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=[32, 32, 32, 64]), 'ChannelMapper'),
    (dict(in_channels=64), 'embed_dims=32'),
    (dict(in_channels=[32, 32, 32]), '4 feature levels'),
    (dict(flip_fusion='max'), "unknown flip_fusion 'max'"),
    (dict(noisy_points_per_group=18), 'noisy_points_per_group'),
    (dict(in_channels=36, embed_dims=36,
          query_decoder=dict(layer_cfg=dict(num_heads=8))), 'divisible by num_heads'),
    # the head states embed_dims and the levels once; a second value is refused, not
    # silently overwritten
    (dict(query_decoder=dict(layer_cfg=dict(embed_dims=64))),
     r'layer_cfg.embed_dims is set by PoseurHead.embed_dims.*got 64'),
    (dict(query_decoder=dict(layer_cfg=dict(num_levels=3))),
     r'layer_cfg.num_levels is set by PoseurHead.num_feature_levels.*got 3'),
])
def test_bad_arguments_raise_value_errors(kwargs, match):
    cfg = dict(type='PoseurHead', in_channels=32, embed_dims=32, num_joints=17)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_emsda_alone_rejects_indivisible_heads():
    with pytest.raises(ValueError, match=r'embed_dims \(36\) must be divisible by num_heads'):
        EMSDAttention(embed_dims=36, num_heads=8)


def test_wrong_number_of_levels_at_forward():
    head = small_head().eval()
    with pytest.raises(ValueError, match='expects 4 feature levels, got 3.*num_outs'):
        head(feats()[1:])


def test_flip_test_needs_flip_indices_for_every_keypoint():
    head = small_head().eval()
    x = feats()
    for flip_indices in (None, COCO_FLIP[:16]):
        with pytest.raises(ValueError, match='flip_indices for all 17.*flip_test=False'):
            head.predict((x, x), samples(flip_indices=flip_indices), dict(flip_test=True))


def test_predict_scales_to_crop_pixels_with_laplace_scores():
    torch.manual_seed(0)
    head = small_head().eval()
    x = feats()
    with torch.no_grad():
        out = head(x)
        preds = head.predict(x, samples())
    for b, pred in enumerate(preds):
        coords = out[b, :, :2].numpy()
        sigma = 1 / (1 + np.exp(-out[b, :, 2:].double().numpy()))
        np.testing.assert_allclose(pred.keypoints[0], coords * np.array(INPUT_SIZE), rtol=1e-5,
                                   atol=1e-4)
        expected = np.prod(1 - np.exp(-0.2 / sigma), axis=-1)
        np.testing.assert_allclose(pred.keypoint_scores[0], expected, rtol=1e-5)


@pytest.mark.parametrize('fusion', ['average', 'uncertainty'])
def test_flip_predict_unflips_and_swaps(fusion):
    """Hand-written un-flip (shift_coords=True: x -> 1 - x - 1/w, left/right swapped, sigma
    swapped too) followed by the hand-written fusion."""
    torch.manual_seed(0)
    head = small_head(flip_fusion=fusion).eval()
    x, x_flip = feats(seed=0), feats(seed=1)
    with torch.no_grad():
        plain, flipped = head(x), head(x_flip)
        preds = head.predict((x, x_flip), samples(), dict(flip_test=True))
    width = INPUT_SIZE[0]
    for b, pred in enumerate(preds):
        for k in range(17):
            j = COCO_FLIP[k]
            c = plain[b, k, :2].tolist()
            s = plain[b, k, 2:].sigmoid().tolist()
            cf = [1 - flipped[b, j, 0].item() - 1 / width, flipped[b, j, 1].item()]
            sf = flipped[b, j, 2:].sigmoid().tolist()
            coords, sigma, score = _fuse(fusion, c, s, cf, sf)
            np.testing.assert_allclose(pred.keypoints[0, k],
                                       [coords[0] * width, coords[1] * INPUT_SIZE[1]],
                                       rtol=1e-5, atol=1e-3)
            assert math.isclose(pred.keypoint_scores[0, k], score, rel_tol=1e-4)
            np.testing.assert_allclose(pred.keypoint_sigmas[0, k],
                                       [sigma[0] * INPUT_SCALE[0], sigma[1] * INPUT_SCALE[1]],
                                       rtol=1e-4)


def _score(sigma, radius=0.2):
    return (1 - math.exp(-radius / sigma[0])) * (1 - math.exp(-radius / sigma[1]))


def _fuse(fusion, c, s, cf, sf):
    if fusion == 'average':
        sigma = [(s[d] + sf[d]) / 2 for d in range(2)]
        return [(c[d] + cf[d]) / 2 for d in range(2)], sigma, _score(sigma)
    p, pf = _score(s), _score(sf)
    w = p**5 / (p**5 + pf**5)
    return ([w * c[d] + (1 - w) * cf[d] for d in range(2)],
            [w * s[d] + (1 - w) * sf[d] for d in range(2)], (p + pf) / 2)


@pytest.mark.parametrize('flip_test', [False, True])
def test_keypoint_sigmas_are_image_pixels_hand_computed(flip_test):
    """A constant normalised sigma (0.1 on x, 0.05 on y) on a 48x64 crop that spans 150x240
    image pixels is 15 x 12 image pixels, with and without the flipped pass."""
    head = small_head().eval()
    last = head.query_decoder.sigma_branches[-1][-1]
    nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.logit(torch.tensor([0.1, 0.05])))
    x = feats()
    with torch.no_grad():
        preds = head.predict((x, feats(seed=1)) if flip_test else x, samples(),
                             dict(flip_test=flip_test))
    for pred in preds:
        assert pred.keypoint_sigmas.shape == (1, 17, 2)
        np.testing.assert_allclose(pred.keypoint_sigmas[0], np.tile([15., 12.], (17, 1)),
                                   rtol=1e-5)


def test_fuse_flip_hand_values():
    head = small_head(num_joints=2, noisy_points_per_group=1)
    coords = torch.tensor([[[0.2, 0.4], [0.6, 0.8]]])
    coords_flip = torch.tensor([[[0.4, 0.2], [0.6, 0.0]]])
    sigma = torch.tensor([[[0.1, 0.1], [0.2, 0.4]]])
    sigma_flip = torch.tensor([[[0.3, 0.1], [0.2, 0.4]]])

    fused, fused_sigma, scores = head.fuse_flip(coords, sigma, coords_flip, sigma_flip)
    torch.testing.assert_close(fused, torch.tensor([[[0.3, 0.3], [0.6, 0.4]]]))
    torch.testing.assert_close(fused_sigma, torch.tensor([[[0.2, 0.1], [0.2, 0.4]]]))
    e = math.exp
    torch.testing.assert_close(scores, torch.tensor([[(1 - e(-1)) * (1 - e(-2)),
                                                       (1 - e(-1)) * (1 - e(-0.5))]]))

    head.flip_fusion = 'uncertainty'
    fused, fused_sigma, scores = head.fuse_flip(coords, sigma, coords_flip, sigma_flip)
    p = (1 - e(-2))**2  # sigma (0.1, 0.1)
    pf = (1 - e(-2 / 3)) * (1 - e(-2))  # sigma (0.3, 0.1)
    w = p**5 / (p**5 + pf**5)
    q = (1 - e(-1)) * (1 - e(-0.5))  # keypoint 1: equal scores, equal weights
    expected = torch.tensor([[[w * 0.2 + (1 - w) * 0.4, w * 0.4 + (1 - w) * 0.2], [0.6, 0.4]]])
    torch.testing.assert_close(fused, expected)
    torch.testing.assert_close(fused_sigma,
                               torch.tensor([[[w * 0.1 + (1 - w) * 0.3, 0.1], [0.2, 0.4]]]))
    torch.testing.assert_close(scores, torch.tensor([[(p + pf) / 2, q]]))
