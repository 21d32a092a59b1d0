"""Runner checkpoints load with torch.load(weights_only=True) once poseur_mm is imported;
untrusted pickles are still refused."""
import contextlib
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import Runner, load_checkpoint

import poseur_mm  # noqa: F401  (applies the allow-list)
from poseur_mm.compat.checkpoint_globals import MMENGINE_CHECKPOINT_GLOBALS
from tiny_model import COCO_ROOT, CODEC, tiny_model, tiny_model_cfg

VAL_PIPELINE = [dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                dict(type='TopdownAffine', input_size=CODEC['input_size']),
                dict(type='PackPoseInputs')]
TRAIN_PIPELINE = VAL_PIPELINE[:-1] + [dict(type='GenerateTarget', encoder=CODEC),
                                      dict(type='PackPoseInputs')]


def _dataloader(pipeline: list, test_mode: bool) -> dict:
    return dict(
        batch_size=7, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=not test_mode),
        dataset=dict(type='CocoDataset', data_root=COCO_ROOT, data_mode='topdown',
                     ann_file='test_coco.json', data_prefix=dict(img=''),
                     test_mode=test_mode, pipeline=pipeline))


def _config(work_dir: str, **extra) -> dict:
    evaluator = dict(type='CocoMetric', ann_file=os.path.join(COCO_ROOT, 'test_coco.json'),
                     score_mode='bbox_rle')
    return dict(
        model=tiny_model_cfg(), work_dir=work_dir, default_scope='mmpose',
        train_dataloader=_dataloader(TRAIN_PIPELINE, test_mode=False),
        val_dataloader=_dataloader(VAL_PIPELINE, test_mode=True),
        test_dataloader=_dataloader(VAL_PIPELINE, test_mode=True),
        val_evaluator=evaluator, test_evaluator=evaluator,
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=1), val_cfg=dict(),
        test_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-4)),
        # save_best stores the best metric, a NumPy scalar, in the checkpoint
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                           save_best='coco/AP', rule='greater')),
        randomness=dict(seed=0), **extra)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One epoch of the tiny Poseur with validation, saved by MMEngine's CheckpointHook."""
    work_dir = tmp_path_factory.mktemp('train')
    runner = Runner(**_config(str(work_dir)))
    runner.train()
    return dict(runner=runner, checkpoint=str(work_dir / 'epoch_1.pth'),
                val_ap=runner.message_hub.get_scalar('val/coco/AP').current())


def _names(entries) -> set:
    names = set()
    for entry in entries:
        obj, name = entry if isinstance(entry, tuple) else (entry, None)
        names.add(name or f'{obj.__module__}.{obj.__qualname__}')
    return names


def test_import_applies_the_allow_list():
    assert _names(MMENGINE_CHECKPOINT_GLOBALS) <= _names(torch.serialization.get_safe_globals())


@contextlib.contextmanager
def _without_user_allow_list():
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        yield
    finally:
        torch.serialization.add_safe_globals(saved)


def test_runner_checkpoint_needs_exactly_the_allow_listed_globals(trained):
    with _without_user_allow_list():
        named = set(torch.serialization.get_unsafe_globals_in_checkpoint(trained['checkpoint']))
        with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
            torch.load(trained['checkpoint'], map_location='cpu', weights_only=True)
    # the dtype classes are never named in the pickle, only checked when their state is set
    allowed = _names(e for e in MMENGINE_CHECKPOINT_GLOBALS
                     if not (isinstance(e, type) and issubclass(e, np.dtype) and e is not np.dtype))
    assert named == allowed


def test_runner_checkpoint_loads_with_weights_only(trained):
    checkpoint = torch.load(trained['checkpoint'], map_location='cpu', weights_only=True)
    runner = trained['runner']
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(checkpoint['state_dict'][key], value, rtol=0, atol=0, msg=key)
    np.testing.assert_array_equal(checkpoint['meta']['dataset_meta']['sigmas'],
                                  runner.train_dataloader.dataset.metainfo['sigmas'])
    hub = checkpoint['message_hub']
    assert hub['runtime_info']['best_score'] == trained['val_ap']
    loss = hub['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    assert loss.mean() == runner.message_hub.get_scalar('train/loss').mean()


def test_test_run_loads_the_checkpoint(trained, tmp_path):
    runner = Runner(**_config(str(tmp_path), load_from=trained['checkpoint']))
    metrics = runner.test()
    for key, value in trained['runner'].model.state_dict().items():
        torch.testing.assert_close(runner.model.state_dict()[key], value, rtol=0, atol=0,
                                   msg=key)
    # the same weights on the same images give the validation result of training
    assert metrics['coco/AP'] == trained['val_ap']

    model = tiny_model()
    load_checkpoint(model, trained['checkpoint'], map_location='cpu')
    torch.testing.assert_close(model.head.coarse_coord.weight,
                               trained['runner'].model.head.coarse_coord.weight)


def test_resume_restores_the_training_state(trained, tmp_path):
    source = trained['runner']
    # max_epochs=1: resuming from epoch 1 leaves nothing to train, only the loaded state
    runner = Runner(**_config(str(tmp_path), resume=True, load_from=trained['checkpoint']))
    runner.train()
    assert (runner.epoch, runner.iter) == (source.epoch, source.iter)
    assert runner.message_hub.get_info('best_score') == trained['val_ap']
    resumed = runner.optim_wrapper.optimizer.state_dict()['state']
    for index, state in source.optim_wrapper.optimizer.state_dict()['state'].items():
        torch.testing.assert_close(resumed[index]['exp_avg'], state['exp_avg'], rtol=0, atol=0)


class _RunsShellCommand:
    """A checkpoint payload that runs a shell command when unpickled."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


class _ReadsHistoryBufferAttribute:
    """A payload that asks the getattr stand-in for something other than a statistic."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_untrusted_payloads_are_refused(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = str(tmp_path / 'malicious.pth')
    torch.save(dict(state_dict=tiny_model().state_dict(),
                    meta=dict(hook=_RunsShellCommand(f'touch {marker}'))), path)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(path, map_location='cpu')
    with pytest.raises(pickle.UnpicklingError, match='system'):
        load_checkpoint(tiny_model(), path, map_location='cpu')  # MMEngine's loader
    assert not marker.exists()

    path = str(tmp_path / 'getattr.pth')
    torch.save(dict(meta=_ReadsHistoryBufferAttribute()), path)
    with pytest.raises(pickle.UnpicklingError, match='refuses getattr'):
        torch.load(path, map_location='cpu')


def test_payload_runs_without_weights_only(tmp_path):
    """The refusal above is the allow-list's doing: a full unpickle runs the payload."""
    marker = tmp_path / 'payload_ran'
    path = str(tmp_path / 'malicious.pth')
    torch.save(dict(meta=_RunsShellCommand(f'touch {marker}')), path)
    torch.load(path, map_location='cpu', weights_only=False)
    assert marker.exists()

