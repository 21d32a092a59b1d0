"""An interrupted run resumed from its checkpoint ends exactly where an uninterrupted one does;
a checkpoint that does not fit the config is refused before anything changes."""
import copy
import math

import pytest
import torch
from mmengine.runner import Runner
from mmpose.registry import MODELS

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
        # PoseurCheckHook, as in every Poseur config: it must let a fitting resume through
        custom_hooks=[dict(type='PoseurCheckHook')] + (
            [dict(type='RNGStateHook')] if rng_hook else []),
        randomness=dict(seed=0, deterministic=True),
        default_scope='mmpose',
        **resume)


def _train(cfg: dict):
    runner = Runner(**copy.deepcopy(cfg))
    runner.train()
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return state, runner.message_hub.get_scalar('train/loss').current()


@pytest.mark.slow
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


def _saved_model(path, num_joints: int, epoch: int) -> str:
    """A checkpoint as MMEngine saves one: the model's state and the epoch it ended."""
    model = MODELS.build(tiny_model_cfg(num_joints))
    torch.save(dict(meta=dict(epoch=epoch, iter=3 * epoch), state_dict=model.state_dict()),
               path)
    return str(path)


def _refused_resume(tmp_path, checkpoint: str, max_epochs: int, match: str) -> None:
    cfg = _config(str(tmp_path / 'run'), max_epochs=max_epochs, resume=True,
                  load_from=checkpoint)
    runner = Runner(**cfg)
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        runner.train()
    # refused before MMEngine loaded anything or trained: weights and counters untouched
    assert runner.iter == 0 and runner.epoch == 0
    after = runner.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not list((tmp_path / 'run').glob('*.pth'))


def test_resume_from_another_keypoint_set_is_refused_naming_keys_and_joints(tmp_path):
    checkpoint = _saved_model(tmp_path / 'mpii.pth', num_joints=16, epoch=1)
    _refused_resume(tmp_path, checkpoint, max_epochs=2,
                    match=r'cannot resume .*mpii\.pth.*head\.coarse_coord\.weight.*'
                          r'num_joints=16, the config 17')


def test_resume_past_max_epochs_is_refused(tmp_path):
    checkpoint = _saved_model(tmp_path / 'epoch_60.pth', num_joints=17, epoch=60)
    _refused_resume(tmp_path, checkpoint, max_epochs=2,
                    match='saved at epoch 60 and this config trains 2 epochs')
