"""`mim train` / `mim train --resume` / `mim test` on tiny Poseur configs, offline on the CPU.

The configs (tests/data) inherit MMPose's bases through ``mmpose::`` and load the plugin with
``custom_imports``; the runs use MMPose's packaged tools/train.py and tools/test.py.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

import poseur_mm  # noqa: F401  (allow-lists MMEngine's checkpoint types for torch.load)

MIM = osp.join(osp.dirname(sys.executable), 'mim')
DATA = osp.join(osp.dirname(__file__), 'data')
CASES = [
    pytest.param(osp.join(DATA, 'td-reg_res18_poseur-1xb2-2e_coco-128x96.py'), 'coco/AP',
                 id='coco'),
    pytest.param(osp.join(DATA, 'td-reg_res18_poseur-1xb2-2e_mpii-128x128.py'), 'PCK',
                 id='mpii'),
]


def _mim(*args) -> str:
    """Run ``mim ARGS`` and return its output; fail with the output's tail if it fails."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    result = subprocess.run([MIM, *map(str, args)], capture_output=True, text=True, env=env,
                            timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f'mim {" ".join(map(str, args))} failed:\n{output[-4000:]}'
    return output


def _latest_scalars(work_dir) -> list:
    """The records of scalars.json of the latest run in ``work_dir``."""
    runs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    with open(runs[-1]) as f:
        return [json.loads(line) for line in f]


def _split(records: list, metric: str):
    train = [r for r in records if 'loss' in r]
    val = [r for r in records if metric in r]
    return train, val


@pytest.mark.slow
@pytest.mark.parametrize('config, metric', CASES)
def test_mim_train_resume_test(config, metric, tmp_path):
    work_dir = tmp_path / 'train'
    # an interrupted run: epoch 1 of the config's 2
    _mim('train', 'mmpose', config, '--work-dir', work_dir,
         '--cfg-options', 'train_cfg.max_epochs=1')
    train, val = _split(_latest_scalars(work_dir), metric)
    iters_per_epoch = max(r['iter'] for r in train)
    assert iters_per_epoch > 1 and all(r['epoch'] == 1 for r in train)
    assert all(torch.isfinite(torch.tensor(r['loss'])) for r in train)
    assert [r['step'] for r in val] == [1]
    assert (work_dir / 'epoch_1.pth').exists()
    assert glob.glob(str(work_dir / f'best_{metric.replace("/", "_")}_epoch_1.pth'))

    # --resume picks up epoch_1.pth and trains epoch 2 only
    output = _mim('train', 'mmpose', config, '--work-dir', work_dir, '--resume')
    assert f'resumed epoch: 1, iter: {iters_per_epoch}' in output
    train, val = _split(_latest_scalars(work_dir), metric)
    assert train and all(r['epoch'] == 2 and r['iter'] > iters_per_epoch for r in train)
    assert [r['step'] for r in val] == [2]
    checkpoint = torch.load(work_dir / 'epoch_2.pth', map_location='cpu')
    assert (checkpoint['meta']['epoch'], checkpoint['meta']['iter']) == (2, 2 * iters_per_epoch)

    # the test run scores the final weights as the last validation did
    test_dir = tmp_path / 'test'
    output = _mim('test', 'mmpose', config, '-C', work_dir / 'epoch_2.pth', '--work-dir',
                  test_dir, '--out', test_dir / 'metrics.json')
    assert re.search(rf'{re.escape(metric)}: [0-9.]+', output)
    with open(test_dir / 'metrics.json') as f:
        assert json.load(f)[metric] == pytest.approx(val[-1][metric], abs=1e-6)
