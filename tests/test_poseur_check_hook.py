"""PoseurCheckHook: config mistakes fail when a real MMEngine run starts, naming the fix."""
import copy

import pytest
import torch
from mmengine.runner import Runner

from tiny_model import COCO_ROOT, tiny_model_cfg, train_pipeline


def _config(work_dir: str, model: dict) -> dict:
    return dict(
        default_scope='mmpose',
        work_dir=work_dir,
        model=model,
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='CocoDataset', data_root=COCO_ROOT, data_mode='topdown',
                         ann_file='test_coco.json', data_prefix=dict(img=''),
                         pipeline=train_pipeline())),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-4)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=-1)),
        custom_hooks=[dict(type='PoseurCheckHook')],
    )


def _raised_in(info, hook_method: str) -> bool:
    return any(entry.name == hook_method for entry in info.traceback)


def test_num_joints_not_matching_the_dataset_fails_before_the_first_iteration(tmp_path):
    runner = Runner.from_cfg(_config(str(tmp_path), tiny_model_cfg(num_joints=16)))
    with pytest.raises(ValueError, match='dataset has 17 keypoints.*num_joints=16') as info:
        runner.train()
    assert _raised_in(info, 'before_train')  # not at the first loss
    assert runner.iter == 0


def test_neck_with_too_few_levels_fails_when_the_run_starts(tmp_path):
    model = tiny_model_cfg()
    model['backbone']['out_indices'] = (1, 2, 3)
    model['neck'].update(in_channels=[128, 256, 512], num_outs=3)
    runner = Runner.from_cfg(_config(str(tmp_path), model))
    with pytest.raises(ValueError, match='expects 4 feature levels, got 3.*num_outs') as info:
        runner.train()
    assert _raised_in(info, 'before_run')


def test_neck_channels_not_matching_embed_dims_name_the_fix(tmp_path):
    model = tiny_model_cfg()
    model['neck']['out_channels'] = 64  # the head was told in_channels=embed_dims=32
    runner = Runner.from_cfg(_config(str(tmp_path), model))
    with pytest.raises(ValueError, match=r'channels \[64, 64, 64, 64\].*out_channels'):
        runner.train()


def test_check_leaves_mode_and_statistics_unchanged(tmp_path):
    model = tiny_model_cfg()
    model['backbone']['norm_eval'] = False  # BN in training mode would update its statistics
    runner = Runner.from_cfg(_config(str(tmp_path), model))
    runner.model.train()
    before = copy.deepcopy(runner.model.state_dict())
    hook = next(h for h in runner.hooks if type(h).__name__ == 'PoseurCheckHook')
    hook.before_run(runner)
    assert runner.model.training
    after = runner.model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_hook_on_a_model_without_poseur_head_names_the_fix(tmp_path):
    model = tiny_model_cfg()
    model['head'] = dict(type='RLEHead', in_channels=32, num_joints=17,
                         decoder=model['head']['decoder'])
    runner = Runner.from_cfg(_config(str(tmp_path), model))
    with pytest.raises(TypeError, match='PoseurHead, got head RLEHead.*remove the hook'):
        runner.train()
