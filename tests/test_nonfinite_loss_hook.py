"""NonFiniteLossHook stops a real MMEngine run on a NaN batch before its checkpoint."""
import os.path as osp

import numpy as np
import pytest
from mmcv.transforms import BaseTransform
from mmengine.runner import Runner
from mmpose.registry import TRANSFORMS

import poseur_mm  # noqa: F401
from poseur_mm.engine.nonfinite_loss_hook import NonFiniteLossError

DATA_ROOT = osp.join(osp.dirname(__file__), '..', '..', 'shared', 'data', 'mmpose_testdata', 'coco')
POISONED_BATCH = 2  # batches of one person: the third iteration gets a NaN label


@TRANSFORMS.register_module()
class _PoisonLabelsForTest(BaseTransform):
    """Sets the regression labels of one person instance to NaN."""

    def __init__(self, ann_id: int):
        self.ann_id = ann_id

    def transform(self, results: dict) -> dict:
        if results['id'] == self.ann_id:
            results['keypoint_labels'] = np.full_like(results['keypoint_labels'], np.nan)
        return results


def _config(work_dir: str, poisoned_ann_id: int) -> dict:
    codec = dict(type='RegressionLabel', input_size=(96, 128))
    pipeline = [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale'),
        dict(type='TopdownAffine', input_size=codec['input_size']),
        dict(type='GenerateTarget', encoder=codec),
        dict(type='_PoisonLabelsForTest', ann_id=poisoned_ann_id),
        dict(type='PackPoseInputs'),
    ]
    return dict(
        default_scope='mmpose',
        work_dir=work_dir,
        model=dict(
            type='TopdownPoseEstimator',
            data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
            backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
            neck=dict(type='ChannelMapper', in_channels=[64, 128, 256, 512], out_channels=64,
                      kernel_size=1, act_cfg=None, norm_cfg=dict(type='GN', num_groups=32),
                      num_outs=4),
            head=dict(type='PoseurHead', in_channels=64, embed_dims=64, num_joints=17,
                      query_decoder=dict(num_layers=2), decoder=codec)),
        train_dataloader=dict(
            batch_size=1, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='CocoDataset', data_root=DATA_ROOT, data_mode='topdown',
                         ann_file='test_coco.json', data_prefix=dict(img=''),
                         pipeline=pipeline)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-4)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='NonFiniteLossHook')],
    )


def test_nan_batch_stops_training_before_its_checkpoint(tmp_path):
    probe = Runner.from_cfg(_config(str(tmp_path / 'probe'), poisoned_ann_id=-1))
    ann_id = probe.train_dataloader.dataset.get_data_info(POISONED_BATCH)['id']

    runner = Runner.from_cfg(_config(str(tmp_path / 'run'), poisoned_ann_id=ann_id))
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    assert f'iteration {POISONED_BATCH + 1} ' in message
    assert 'loss_coarse=nan' in message and 'loss_dec1=nan' in message
    # the healthy iterations were checkpointed, the poisoned one was not
    assert osp.exists(tmp_path / 'run' / f'iter_{POISONED_BATCH}.pth')
    assert not osp.exists(tmp_path / 'run' / f'iter_{POISONED_BATCH + 1}.pth')
