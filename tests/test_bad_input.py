"""Bad input: clear errors at the right place, finite numbers where data is degenerate."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmpose.datasets import CocoDataset
from mmpose.registry import MODELS
from mmpose.utils import register_all_modules

import poseur_mm  # noqa: F401

DATA_ROOT = osp.join(osp.dirname(__file__), '..', '..', 'shared', 'data', 'mmpose_testdata', 'coco')
CODEC = dict(type='RegressionLabel', input_size=(48, 64))
register_all_modules()


def _model(num_joints=17, **head):
    return MODELS.build(
        dict(
            type='TopdownPoseEstimator',
            data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
            backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
            neck=dict(type='ChannelMapper', in_channels=[64, 128, 256, 512], out_channels=32,
                      kernel_size=1, act_cfg=None, norm_cfg=dict(type='GN', num_groups=32),
                      num_outs=4),
            head=dict(type='PoseurHead', in_channels=32, embed_dims=32, num_joints=num_joints,
                      query_decoder=dict(num_layers=2, layer_cfg=dict(num_heads=4)),
                      decoder=CODEC, **head),
            test_cfg=dict(flip_test=True)))


def _batch(num=2, train=True, edit=None):
    """A real batch from MMPose's CocoDataset and pipeline; ``edit`` may change the
    raw data info (boxes, visibility) before the pipeline runs."""
    dataset = CocoDataset(data_root=DATA_ROOT, ann_file='test_coco.json', data_mode='topdown',
                          data_prefix=dict(img=''), pipeline=[], test_mode=not train)
    steps = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
             dict(type='TopdownAffine', input_size=CODEC['input_size'])]
    if train:
        steps.append(dict(type='GenerateTarget', encoder=CODEC))
    pipeline = Compose(steps + [dict(type='PackPoseInputs')])
    infos = [dataset.get_data_info(i) for i in range(num)]
    if edit:
        for info in infos:
            edit(info)
    return pseudo_collate([pipeline(info) for info in infos])


def test_num_joints_not_matching_the_dataset_names_the_fix():
    model = _model(num_joints=16)
    data = model.data_preprocessor(_batch(), training=True)
    with pytest.raises(ValueError, match='dataset has 17 keypoints.*num_joints=16'):
        model.loss(**data)


def test_no_visible_keypoint_gives_finite_loss_and_gradients():
    def hide_all(info):
        info['keypoints_visible'] = np.zeros_like(info['keypoints_visible'])

    model = _model()
    data = model.data_preprocessor(_batch(edit=hide_all), training=True)
    assert float(data['data_samples'][0].gt_instance_labels.keypoint_weights.sum()) == 0
    losses = model.loss(**data)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    assert float(total) == 0.0  # every term is weighted by visibility
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)


def test_zero_area_boxes_do_not_crash_prediction():
    def collapse(info):
        x, y = info['bbox'][0, :2]
        info['bbox'] = np.array([[x, y, x, y]], dtype=np.float32)

    model = _model().eval()
    data = model.data_preprocessor(_batch(train=False, edit=collapse), training=False)
    with torch.no_grad():
        results = model.predict(**data)
    assert len(results) == 2
    for result in results:
        keypoints = result.pred_instances.keypoints
        assert keypoints.shape == (1, 17, 2)
        assert np.isfinite(keypoints).all()
        assert np.isfinite(result.pred_instances.keypoint_scores).all()


def test_flip_test_without_flip_indices_names_the_fix():
    model = _model().eval()
    data = model.data_preprocessor(_batch(train=False), training=False)
    for sample in data['data_samples']:
        sample.set_metainfo(dict(flip_indices=None))
    with pytest.raises(ValueError, match='flip_indices.*flip_test=False'):
        with torch.no_grad():
            model.predict(**data)
