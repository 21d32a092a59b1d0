"""An interrupted run resumed from its checkpoint ends exactly where an uninterrupted one does."""
import copy
import math

import torch
from mmengine.runner import Runner

import poseur_mm  # noqa: F401  (allow-lists MMEngine's checkpoint types)
from tiny_model import COCO_ROOT, CODEC, tiny_model_cfg


def _config(work_dir: str, max_epochs: int, rng_hook: bool = True, **resume) -> dict:
    # random augmentation, dropout and noisy query groups all draw from the generators
    pipeline = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                dict(type='RandomFlip', direction='horizontal'),
                dict(type='RandomBBoxTransform'),
                dict(type='TopdownAffine', input_size=CODEC['input_size']),
                dict(type='GenerateTarget', encoder=CODEC), dict(type='PackPoseInputs')]
    return dict(
        model=tiny_model_cfg(),
        work_dir=work_dir,
        train_dataloader=dict(
            batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(type='CocoDataset', data_root=COCO_ROOT, data_mode='topdown',
                         ann_file='test_coco.json', data_prefix=dict(img=''),
                         pipeline=pipeline)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=[dict(type='RNGStateHook')] if rng_hook else [],
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmpose',
        **resume)


def _train(cfg: dict):
    runner = Runner(**copy.deepcopy(cfg))
    runner.train()
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return state, runner.message_hub.get_scalar('train/loss').current()


def test_resume_reaches_the_uninterrupted_weights_and_loss(tmp_path):
    full_state, full_loss = _train(_config(str(tmp_path / 'full'), max_epochs=2))
    _train(_config(str(tmp_path / 'first'), max_epochs=1))
    checkpoint = str(tmp_path / 'first' / 'epoch_1.pth')

    resumed_state, resumed_loss = _train(
        _config(str(tmp_path / 'resumed'), max_epochs=2, resume=True, load_from=checkpoint))
    assert math.isfinite(full_loss)
    assert resumed_loss == full_loss
    for key, value in full_state.items():
        torch.testing.assert_close(resumed_state[key], value, rtol=0, atol=0, msg=key)

    # without the saved generator states the resumed run draws other random numbers
    _, reseeded_loss = _train(
        _config(str(tmp_path / 'reseeded'), max_epochs=2, rng_hook=False, resume=True,
                load_from=checkpoint))
    assert reseeded_loss != full_loss
