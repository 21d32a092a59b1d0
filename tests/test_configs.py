"""Every shipped config (configs/ and projects/*/configs/) loads, builds, trains one step and
predicts on CPU, on real images through the config's own dataset and pipelines.

Sizes are reduced so each model runs fast: every ``input_size`` becomes a quarter, rounded up
to a multiple of 32 (so heatmap heads still match their targets), and ``heatmap_size`` follows
per axis. Pretrained weights are not loaded (``init_cfg`` is dropped from the backbone).
"""
import glob
import importlib.util
import math
import os.path as osp

import mmpose
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.registry import DATASETS, MODELS
from mmpose.utils import register_all_modules

import poseur_mm  # noqa: F401

ROOT = osp.join(osp.dirname(__file__), '..')
TEST_DATA = osp.join(ROOT, 'tests', 'data')  # MMPose's test images and annotations
# dataset type -> (data_root, ann_file) of the real test annotations
DATA = {
    'CocoDataset': ('coco', 'test_coco.json'),
    'CocoWholeBodyDataset': ('coco', 'test_coco_wholebody.json'),
    'MpiiDataset': ('mpii', 'test_mpii.json'),
}
CONFIGS = sorted(  # configs/_base_ holds fragments, not configs
    [p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
     if '_base_' not in p] + glob.glob(osp.join(ROOT, 'projects', '*', 'configs', '*.py')))
HAS_ALBUMENTATIONS = importlib.util.find_spec('albumentations') is not None
register_all_modules()


def _config_id(path: str) -> str:
    return osp.relpath(path, ROOT)


def _is_published_setting(path: str) -> bool:
    """Configs that follow the published evaluation (not the small demo projects)."""
    return _config_id(path).startswith(('configs', osp.join('projects', 'head_swap')))


def _shrink(node):
    """Reduce every ``input_size`` (and the ``heatmap_size`` beside it) in place."""
    if isinstance(node, dict):
        if 'input_size' in node:
            old = tuple(node['input_size'])
            new = tuple(math.ceil(s / 128) * 32 for s in old)
            node['input_size'] = new
            if 'heatmap_size' in node:
                heatmap = tuple(h * n // o for h, n, o in zip(node['heatmap_size'], new, old))
                assert all(h * o == hm * n for h, o, hm, n in zip(
                    heatmap, old, node['heatmap_size'], new)), 'heatmap stride not integral'
                node['heatmap_size'] = heatmap
        for value in node.values():
            _shrink(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _shrink(value)


def _unscoped(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k != '_scope_'}


def _num_joints(head: dict) -> int:
    return head['out_channels'] if head['type'] == 'HeatmapHead' else head['num_joints']


def _flip_indices_from_names(keypoint_info: dict) -> list:
    """Independent of MMPose's parser: each keypoint's mirror, by its ``swap`` name."""
    ids = {info['name']: i for i, info in keypoint_info.items()}
    return [ids[info['swap']] if info['swap'] else i for i, info in sorted(keypoint_info.items())]


def _metainfo_file(dataset_type) -> str:
    """The dataset's metainfo file in MMPose's packaged configs/_base_/datasets."""
    return osp.join(osp.dirname(mmpose.__file__), '.mim', dataset_type.METAINFO['from_file'])


def _dataset(cfg: Config, train: bool):
    loader = cfg.train_dataloader if train else cfg.test_dataloader
    dataset = dict(loader.dataset)
    folder, ann_file = DATA[dataset['type']]
    pipeline = list(dataset['pipeline'])
    if not HAS_ALBUMENTATIONS:  # an optional MMPose dependency, absent here
        pipeline = [t for t in pipeline if t['type'] != 'Albumentation']
    dataset.update(
        data_root=osp.join(TEST_DATA, folder),
        ann_file=ann_file,
        data_prefix=dict(img=''),
        pipeline=pipeline)
    for key in ('bbox_file', 'headbox_file'):  # full-dataset files; ground-truth boxes here
        dataset.pop(key, None)
    return DATASETS.build(dataset)


def _load(path: str) -> Config:
    cfg = Config.fromfile(path).to_dict()
    _shrink(cfg)
    cfg['model']['backbone'].pop('init_cfg', None)  # no pretrained download
    return Config(cfg)


pytestmark = pytest.mark.usefixtures('quiet_single_thread')


def _build_param(path: str):
    """HRNet and whole-body models take 3-11 s each to build, train a step and predict
    (2-core CPU): those run in the slow tier."""
    slow = any(key in osp.basename(path) for key in ('hrnet', 'wholebody'))
    return pytest.param(path, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize('path', [_build_param(p) for p in CONFIGS], ids=_config_id)
def test_config_builds_trains_and_predicts(path):
    torch.manual_seed(0)
    np.random.seed(0)  # augmentation
    cfg = _load(path)
    head = cfg.model.head
    num_joints = _num_joints(head)
    if head.type == 'PoseurHead':
        assert cfg.custom_imports == dict(imports=['poseur_mm'], allow_failed_imports=False)
    if head.type == 'PoseurHead' and _is_published_setting(path):
        assert cfg.model.test_cfg.flip_test and cfg.model.test_cfg.get('shift_coords', True)
        if cfg.val_evaluator.type.startswith('Coco'):
            assert cfg.val_evaluator.score_mode == 'bbox_rle'
            assert cfg.val_evaluator.get('nms_mode', 'oks_nms') == 'oks_nms'
    # one codec: the config's, the head's and the training targets'
    assert _unscoped(head.decoder) == _unscoped(cfg.codec)
    targets = [
        t.encoder for t in cfg.train_dataloader.dataset.pipeline if t.type == 'GenerateTarget'
    ]
    assert [_unscoped(t) for t in targets] == [_unscoped(cfg.codec)]

    # the dataset's metainfo file agrees with the head and has a valid flip permutation
    dataset_type = DATASETS.get(cfg.train_dataloader.dataset.type)
    metainfo = parse_pose_metainfo(dict(dataset_type.METAINFO))
    assert metainfo['num_keypoints'] == num_joints
    raw_info = Config.fromfile(_metainfo_file(dataset_type)).dataset_info
    assert metainfo['flip_indices'] == _flip_indices_from_names(raw_info['keypoint_info'])

    train_set, test_set = _dataset(cfg, train=True), _dataset(cfg, train=False)
    assert train_set.metainfo['flip_indices'] == metainfo['flip_indices']
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # SyncBN needs a process group
    model.init_weights()

    # one training step through the config's own optimizer wrapper
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper.to_dict())
    base_lr = cfg.optim_wrapper.optimizer.lr
    if head.type == 'PoseurHead':
        offsets = {id(p) for n, p in model.named_parameters() if 'sampling_offsets' in n}
        assert offsets
        for group in optim_wrapper.optimizer.param_groups:
            expected = 0.1 * base_lr if id(group['params'][0]) in offsets else base_lr
            assert group['lr'] == pytest.approx(expected)
    train_batch = pseudo_collate([train_set[i] for i in range(2)])
    sample = train_batch['data_samples'][0]
    assert sample.metainfo['flip_indices'] == metainfo['flip_indices']
    assert tuple(train_batch['inputs'][0].shape[-2:]) == tuple(cfg.codec.input_size)[::-1]
    before = {n: p.detach().clone() for n, p in model.head.named_parameters()}
    model.train()
    log_vars = model.train_step(train_batch, optim_wrapper)
    losses = [v for k, v in log_vars.items() if k.startswith('loss')]
    assert losses and all(torch.isfinite(v) for v in losses)
    changed = [n for n, p in model.head.named_parameters() if not torch.equal(before[n], p)]
    assert changed, 'the training step did not update the head'

    # prediction (with flip test where the config asks for it)
    model.eval()
    test_batch = pseudo_collate([test_set[i] for i in range(2)])
    with torch.no_grad():
        results = model.test_step(test_batch)
    assert len(results) == 2
    for result in results:
        keypoints = result.pred_instances.keypoints
        scores = result.pred_instances.keypoint_scores
        assert keypoints.shape == (1, num_joints, 2)
        assert scores.shape == (1, num_joints)
        assert np.isfinite(keypoints).all() and np.isfinite(scores).all()
        if head.type == 'PoseurHead':  # Laplace probabilities
            assert ((scores >= 0) & (scores <= 1)).all()


POSEUR_CONFIGS = [
    path for path in CONFIGS + sorted(glob.glob(osp.join(TEST_DATA, '*.py')))
    if Config.fromfile(path).model.get('head', {}).get('type') == 'PoseurHead'
]


@pytest.mark.parametrize('path', POSEUR_CONFIGS, ids=_config_id)
def test_every_poseur_config_stops_on_a_non_finite_loss(path):
    """A NaN run must not end "successfully" with a saved checkpoint, whichever config a
    user starts from (tests' configs included)."""
    hooks = [hook['type'] for hook in Config.fromfile(path).get('custom_hooks', [])]
    assert 'NonFiniteLossHook' in hooks, hooks
