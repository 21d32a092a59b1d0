"""Two gloo processes on the CPU train and evaluate like one process with twice the batch."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import mmpose
import pytest
import torch
from mmengine.config import Config

import poseur_mm  # noqa: F401  (allow-lists MMEngine's checkpoint types)
from tiny_model import COCO_ROOT, tiny_model_cfg, train_pipeline

TRAIN_SCRIPT = osp.join(osp.dirname(mmpose.__file__), '.mim', 'tools', 'train.py')
TORCHRUN = osp.join(osp.dirname(sys.executable), 'torchrun')


def _write_config(path: str, batch_size: int) -> str:
    model = tiny_model_cfg(num_noise_groups=0, query_decoder=dict(
        num_layers=2, layer_cfg=dict(num_heads=4, dropout=0.0)))
    # BatchNorm statistics of a batch would differ between b and 2b: use the running ones
    model['backbone']['norm_eval'] = True
    model['test_cfg'] = dict(flip_test=False)
    dataset = dict(type='CocoDataset', data_root=COCO_ROOT, data_mode='topdown',
                   ann_file='test_coco.json', data_prefix=dict(img=''))
    val_pipeline = [s for s in train_pipeline() if s['type'] != 'GenerateTarget']
    cfg = dict(
        default_scope='mmpose',
        custom_imports=dict(imports=['poseur_mm', 'poseur_mm.compat.gloo_process_group'],
                            allow_failed_imports=False),
        model=model,
        model_wrapper_cfg=dict(type='DeviceAwareDistributedDataParallel'),
        train_dataloader=dict(batch_size=batch_size, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              dataset=dict(**dataset, pipeline=train_pipeline())),
        val_dataloader=dict(batch_size=2, num_workers=0,
                            sampler=dict(type='DefaultSampler', shuffle=False),
                            dataset=dict(**dataset, test_mode=True, pipeline=val_pipeline)),
        val_evaluator=dict(type='CocoMetric', ann_file=osp.join(COCO_ROOT, 'test_coco.json')),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=2),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-3, momentum=0.9)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=2)),
        visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')]),
        randomness=dict(seed=0, deterministic=True),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='INFO',
    )
    Config(cfg).dump(path)
    return path


def _scalars(work_dir: str) -> list:
    (path, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f]


def _train(tmp_path, name: str, nproc: int, batch_size: int) -> list:
    config = _write_config(str(tmp_path / f'{name}.py'), batch_size)
    work_dir = str(tmp_path / name)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    if nproc == 1:
        command = [sys.executable, TRAIN_SCRIPT, config, '--work-dir', work_dir]
    else:
        command = [TORCHRUN, f'--nproc_per_node={nproc}', '--master_port=29533', TRAIN_SCRIPT,
                   config, '--work-dir', work_dir, '--launcher', 'pytorch']
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return _scalars(work_dir)


@pytest.mark.slow
def test_two_cpu_processes_match_one_process_with_double_batch(tmp_path):
    single = _train(tmp_path, 'single', nproc=1, batch_size=4)
    double = _train(tmp_path, 'ddp', nproc=2, batch_size=2)

    # 12 people, 2 epochs of 3 iterations in both runs
    assert len([row for row in single if 'loss' in row]) == 6
    assert len([row for row in double if 'loss' in row]) == 6
    # DDP averages the gradients of the two half batches: the same trajectory
    weights = [torch.load(tmp_path / name / 'epoch_2.pth', map_location='cpu')['state_dict']
               for name in ('single', 'ddp')]
    assert weights[0].keys() == weights[1].keys()
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, rtol=1e-4, atol=1e-5, msg=key)

    single_metrics = [row for row in single if 'coco/AP' in row][-1]
    ddp_metrics = [row for row in double if 'coco/AP' in row][-1]
    for key in ('coco/AP', 'coco/AP .5', 'coco/AR'):
        assert ddp_metrics[key] == pytest.approx(single_metrics[key], abs=1e-3), key
