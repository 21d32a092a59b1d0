"""The main job (tools/demo.sh -> projects/synthetic_pose/demo.py), its configs and the
helpers that point them at a set, a crop size and a schedule."""
import glob
import json
import os
import os.path as osp
import subprocess

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmpose.registry import DATASETS, MODELS
from mmpose.utils import register_all_modules

import poseur_mm  # noqa: F401
from projects.synthetic_pose import demo, synthetic_runs

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'projects', 'synthetic_pose', 'configs', '*.py')))
register_all_modules()


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic_pose')) + '/'
    synthetic_runs.prepare_data(root, num_train=8, num_val=4, seed=0)
    return root


def sizes_in(node, key):
    """Every value of ``key`` in the nested dicts and lists of a config."""
    if isinstance(node, dict):
        found = [tuple(node[key])] if key in node else []
        return found + [s for value in node.values() for s in sizes_in(value, key)]
    if isinstance(node, (list, tuple)):
        return [s for value in node for s in sizes_in(value, key)]
    return []


def test_there_is_a_poseur_and_a_heatmap_config():
    heads = {Config.fromfile(path).model.head.type for path in CONFIGS}
    assert {'PoseurHead', 'HeatmapHead'} <= heads


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_set_input_size_reaches_every_codec_and_crop(path):
    cfg = Config.fromfile(path)
    before = len(sizes_in(cfg.to_dict(), 'input_size'))
    synthetic_runs.set_input_size(cfg, (96, 128))
    # head decoder, GenerateTarget, and TopdownAffine of train, val and test pipelines
    assert before >= 5
    assert sizes_in(cfg.to_dict(), 'input_size') == [(96, 128)] * before
    assert set(sizes_in(cfg.to_dict(), 'heatmap_size')) <= {(24, 32)}


@pytest.mark.parametrize('input_size', [None, (96, 128)], ids=['config', '128x96'])
@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_trains_and_predicts_on_the_synthetic_set(path, input_size, data_root):
    cfg = Config.fromfile(path)
    synthetic_runs.set_data_root(cfg, data_root)
    if input_size:  # the model, targets and crops must still fit together
        synthetic_runs.set_input_size(cfg, input_size)
    model = MODELS.build(cfg.model)
    model.init_weights()
    train = DATASETS.build(cfg.train_dataloader.dataset)
    batch = model.data_preprocessor(pseudo_collate([train[0], train[1]]), training=True)
    losses = model(**batch, mode='loss')
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total) and total.requires_grad

    test = DATASETS.build(cfg.test_dataloader.dataset)  # the jittered detections
    assert test.bbox_file and len(test) > 0
    model.eval()
    with torch.no_grad():
        samples = model.test_step(pseudo_collate([test[0]]))
    assert samples[0].pred_instances.keypoints.shape == (1, 17, 2)
    assert samples[0].pred_instances.keypoint_scores.shape == (1, 17)


def test_prepare_data_reuses_only_an_identical_set(data_root, tmp_path):
    stamp = osp.join(data_root, 'generation.json')
    mtime = os.stat(stamp).st_mtime_ns
    assert synthetic_runs.prepare_data(data_root, num_train=8, num_val=4, seed=0) == 0.0
    assert os.stat(stamp).st_mtime_ns == mtime
    other = str(tmp_path / 'other')
    synthetic_runs.prepare_data(other, num_train=8, num_val=4, seed=0)
    assert synthetic_runs.prepare_data(other, num_train=8, num_val=4, seed=1) > 0.0
    with open(osp.join(other, 'generation.json')) as f:
        assert json.load(f)['seed'] == 1


def test_help_shows_the_defaults_and_what_a_default_run_costs_and_reaches(capsys):
    with pytest.raises(SystemExit):
        demo.parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    for default in ('(default: 2500)', '(default: 250)', '(default: work_dirs/synthetic_pose_demo)',
                    'synthetic-64x48.py)'):
        assert default in text, default
    assert '16 minutes on a 2-core CPU' in text and 'COCO AP 0.' in text


def test_a_schedule_too_short_to_learn_is_announced():
    assert '248 iterations' in demo.schedule_warning(248)
    assert f'at least {demo.MIN_ITERATIONS}' in demo.schedule_warning(248)
    assert demo.schedule_warning(3100) is None


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    work_dir = str(tmp_path / 'work')
    results = demo.main(['--data-root', str(tmp_path / 'data'), '--work-dir', work_dir,
                         '--num-train', '24', '--num-val', '4', '--epochs', '1',
                         '--num-vis', '2'])
    out = capsys.readouterr().out
    # CocoMetric's AP table, on ground-truth boxes (val) and on detections (test)
    assert out.count('Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all') == 2
    assert 'COCO keypoint AP with detected (jittered) boxes' in out
    assert 'warning: this schedule trains' in out  # 1 epoch of 24 images cannot learn
    assert demo.DEFAULT_RUN in out
    with open(osp.join(work_dir, 'results.json')) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(results))
    for boxes in ('gt_boxes', 'detected_boxes'):
        assert 0.0 <= saved[boxes]['coco/AP'] <= 1.0 and len(saved[boxes]) == 10
    assert osp.exists(osp.join(work_dir, 'epoch_1.pth'))

    curves = cv2.imread(osp.join(work_dir, 'curves.png'))
    assert curves is not None and curves.std() > 0
    pictures = sorted(glob.glob(osp.join(work_dir, 'predictions', '*.jpg')))
    assert len(pictures) == 2
    for picture in pictures:
        drawn = cv2.imread(picture)
        original = cv2.imread(osp.join(str(tmp_path / 'data'), 'val', osp.basename(picture)))
        # ground truth and prediction side by side, both drawn over the image
        assert drawn.shape == (original.shape[0], 2 * original.shape[1], 3)
        assert np.abs(drawn[:, :original.shape[1]].astype(int) - original).mean() > 1


@pytest.mark.slow
def test_demo_sh_sets_up_the_environment_and_runs_the_demo():
    with open(osp.join(REPO, 'tools', 'demo.sh')) as f:
        commands = [line for line in f if line.strip() and not line.startswith(('#', 'set '))]
    assert commands[1].strip() == 'bash "$repo/tools/setup_env.sh"'
    done = subprocess.run(['bash', osp.join(REPO, 'tools', 'demo.sh'), '--help'],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert '--input-size' in done.stdout
