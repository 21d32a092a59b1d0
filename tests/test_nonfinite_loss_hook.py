"""NonFiniteLossHook stops a real MMEngine run on a NaN batch before its checkpoint."""
import os.path as osp

import numpy as np
import pytest
from mmcv.transforms import BaseTransform
from mmengine.runner import Runner
from mmpose.registry import TRANSFORMS

from poseur_mm.engine.nonfinite_loss_hook import NonFiniteLossError
from tiny_model import COCO_ROOT, tiny_model_cfg, train_pipeline

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
    pipeline = train_pipeline()
    pipeline.insert(-1, dict(type='_PoisonLabelsForTest', ann_id=poisoned_ann_id))
    return dict(
        default_scope='mmpose',
        work_dir=work_dir,
        model=tiny_model_cfg(),
        train_dataloader=dict(
            batch_size=1, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='CocoDataset', data_root=COCO_ROOT, data_mode='topdown',
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
