"""End to end: MMPose's TopdownPoseEstimator with a PoseurHead on real COCO images.

Real parts only: ResNet-18, MMPose's ChannelMapper neck, PoseDataPreprocessor, CocoDataset
and its pipeline. 128x96 crops instead of the published 256x192 keep the run short.
"""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmpose.datasets import CocoDataset
from mmpose.registry import MODELS
from mmpose.utils import register_all_modules

import poseur_mm  # noqa: F401  (registers the modules)

register_all_modules()

INPUT_SIZE = (96, 128)  # (w, h)
CODEC = dict(type='RegressionLabel', input_size=INPUT_SIZE)
LOSS_KEYS = {'loss_coarse', 'acc_pose'} | {f'loss_dec{i}' for i in range(6)}


def build_model(flip_test=False):
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='TopdownPoseEstimator',
        data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
        neck=dict(type='ChannelMapper', in_channels=[64, 128, 256, 512], out_channels=256,
                  kernel_size=1, act_cfg=None, norm_cfg=dict(type='GN', num_groups=32),
                  num_outs=4),
        head=dict(type='PoseurHead', in_channels=256, num_joints=17, decoder=CODEC),
        test_cfg=dict(flip_test=flip_test)))
    model.init_weights()  # as the Runner does
    return model


def load(coco_root, indices, train):
    """Samples through MMPose's own pipeline, and their raw annotations."""
    pipeline = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                dict(type='TopdownAffine', input_size=INPUT_SIZE)]
    if train:
        pipeline.append(dict(type='GenerateTarget', encoder=CODEC))
    pipeline.append(dict(type='PackPoseInputs'))
    dataset = CocoDataset(data_root=coco_root, ann_file='test_coco.json', data_mode='topdown',
                          data_prefix=dict(img=''), pipeline=pipeline, test_mode=not train)
    return (pseudo_collate([dataset[i] for i in indices]),
            [dataset.get_data_info(i) for i in indices])


def predict(model, batch, flip_test=False):
    model.eval()
    model.test_cfg['flip_test'] = flip_test
    with torch.no_grad():
        return model.predict(**model.data_preprocessor(batch, training=False))


def seeded_loss(model, batch):
    """Training-mode losses with a fixed seed: the same noisy groups and dropout masks at
    every call, so two calls differ only by the parameters."""
    model.train()
    torch.manual_seed(1234)
    with torch.no_grad():
        losses = model.loss(**model.data_preprocessor(batch, training=True))
    return float(sum(v for k, v in losses.items() if k.startswith('loss')))


def keypoint_error(results, infos):
    """Mean image-pixel distance to the visible ground-truth keypoints."""
    errors = []
    for result, info in zip(results, infos):
        visible = info['keypoints_visible'][0] > 0
        dist = np.linalg.norm(result.pred_instances.keypoints[0] - info['keypoints'][0], axis=-1)
        errors.append(dist[visible].mean())
    return float(np.mean(errors))


def assert_near_boxes(results, infos, margin=0.5):
    """Keypoints lie inside each person's box grown by ``margin`` of its size per side."""
    for result, info in zip(results, infos):
        x0, y0, x1, y1 = info['bbox'][0]
        grow = margin * np.array([x1 - x0, y1 - y0])
        keypoints = result.pred_instances.keypoints[0]
        assert (keypoints >= np.array([x0, y0]) - grow).all(), (keypoints, info['bbox'])
        assert (keypoints <= np.array([x1, y1]) + grow).all(), (keypoints, info['bbox'])


def test_loss_predict_and_flip_predict_on_a_real_image(coco_root):
    model = build_model()
    batch, _ = load(coco_root, [0], train=True)
    model.train()
    losses = model.loss(**model.data_preprocessor(batch, training=True))
    assert set(losses) == LOSS_KEYS
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    for name in ('backbone.conv1.weight', 'neck.convs.0.conv.weight',
                 'head.query_decoder.layers.0.cross_attn.sampling_offsets.weight',
                 'head.query_decoder.layers.5.cross_attn.head_proj_weight',
                 'head.decoder_loss.flow.s.0.0.weight'):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().max() > 0, name

    batch, infos = load(coco_root, [0], train=False)
    with torch.no_grad():
        model.eval()
        feats = model.extract_feat(model.data_preprocessor(batch, training=False)['inputs'])
        crop = model.head(feats)[0, :, :2].numpy()  # normalised crop coordinates
    for flip_test in (False, True):
        results = predict(model, batch, flip_test)
        pred = results[0].pred_instances
        assert pred.keypoints.shape == (1, 17, 2)
        assert pred.keypoint_scores.shape == (1, 17)
        assert ((pred.keypoint_scores >= 0) & (pred.keypoint_scores <= 1)).all()
        assert_near_boxes(results, infos)
        if not flip_test:
            # image coordinates: the crop spans center -+ scale / 2 (GetBBoxCenterScale and
            # TopdownAffine's metainfo), written out here rather than taken from MMPose
            meta = results[0].metainfo
            top_left = meta['input_center'] - meta['input_scale'] / 2
            np.testing.assert_allclose(pred.keypoints[0], top_left + crop * meta['input_scale'],
                                       rtol=1e-4, atol=1e-2)
            plain = pred.keypoints.copy()
    assert np.abs(pred.keypoints - plain).max() > 1e-3  # flip test ran a second pass


@pytest.mark.slow
def test_adam_steps_fit_one_batch(coco_root):
    model = build_model()
    train_batch, _ = load(coco_root, [0, 1], train=True)
    test_batch, infos = load(coco_root, [0, 1], train=False)
    loss_before = seeded_loss(model, train_batch)
    error_before = keypoint_error(predict(model, test_batch), infos)

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(20):
        model.train()
        losses = model.loss(**model.data_preprocessor(train_batch, training=True))
        total = sum(v for k, v in losses.items() if k.startswith('loss'))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    loss_after = seeded_loss(model, train_batch)
    results = predict(model, test_batch)
    error_after = keypoint_error(results, infos)
    assert loss_after < loss_before / 1.5, (loss_before, loss_after)
    assert error_after < 0.6 * error_before, (error_before, error_after)
    assert_near_boxes(results, infos, margin=0.1)
