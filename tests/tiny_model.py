"""A small real Poseur model and real COCO batches, shared by the robustness tests."""
import os.path as osp

from mmengine.dataset import Compose, pseudo_collate
from mmpose.datasets import CocoDataset
from mmpose.registry import MODELS
from mmpose.utils import register_all_modules

import poseur_mm  # noqa: F401

COCO_ROOT = osp.join(osp.dirname(__file__), 'data', 'coco')  # MMPose's COCO test images
CODEC = dict(type='RegressionLabel', input_size=(48, 64))
register_all_modules()


def tiny_model_cfg(num_joints: int = 17, **head) -> dict:
    """ResNet-18 + ChannelMapper(32) + a 2-layer PoseurHead with flip test; ``head``
    overrides the head's arguments.

    GroupNorm keeps several channels per group: with one channel per group every channel of
    the last map has zero spatial mean, so the coarse GAP input would be the same for every
    image and its L2 normalisation would blow the gradients up.
    """
    return dict(
        type='TopdownPoseEstimator',
        data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
        neck=dict(type='ChannelMapper', in_channels=[64, 128, 256, 512], out_channels=32,
                  kernel_size=1, act_cfg=None, norm_cfg=dict(type='GN', num_groups=8),
                  num_outs=4),
        head=dict(dict(type='PoseurHead', in_channels=32, embed_dims=32, num_joints=num_joints,
                       query_decoder=dict(num_layers=2, layer_cfg=dict(num_heads=4)),
                       decoder=CODEC), **head),
        test_cfg=dict(flip_test=True))


def tiny_model(num_joints: int = 17, **head):
    return MODELS.build(tiny_model_cfg(num_joints, **head))


def train_pipeline() -> list:
    return [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
            dict(type='TopdownAffine', input_size=CODEC['input_size']),
            dict(type='GenerateTarget', encoder=CODEC), dict(type='PackPoseInputs')]


def coco_batch(num: int = 2, train: bool = True, edit=None) -> dict:
    """A real batch of the first ``num`` people through MMPose's CocoDataset and pipeline;
    ``edit`` may change each raw data info (boxes, visibility) before the pipeline."""
    dataset = CocoDataset(data_root=COCO_ROOT, ann_file='test_coco.json', data_mode='topdown',
                          data_prefix=dict(img=''), pipeline=[], test_mode=not train)
    steps = train_pipeline()
    if not train:
        steps = [s for s in steps if s['type'] != 'GenerateTarget']
    pipeline = Compose(steps)
    infos = [dataset.get_data_info(i) for i in range(num)]
    if edit:
        for info in infos:
            edit(info)
    return pseudo_collate([pipeline(info) for info in infos])
