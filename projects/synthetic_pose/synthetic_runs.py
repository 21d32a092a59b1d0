"""Point a synthetic-set config at a data set, a crop size and a schedule; make the set;
let several runs share one process.

Shared by the demo (:mod:`.demo`) and the accuracy-vs-resolution study
(:mod:`.accuracy_study`).
"""
import hashlib
import json
import os.path as osp
import time
from typing import Tuple

from mmengine.config import Config

from . import synthetic_coco, synthetic_scene
from .synthetic_coco import annotation_path, detection_path, generate_dataset

SYNTHETIC_CONFIGS = osp.join(osp.dirname(osp.abspath(__file__)), 'configs')
# Heatmap codecs: their heatmap is 1/HEATMAP_STRIDE of the input crop
HEATMAP_CODECS = {'MSRAHeatmap', 'UDPHeatmap', 'MegviiHeatmap'}
HEATMAP_STRIDE = 4


def set_input_size(cfg: Config, input_size: Tuple[int, int]) -> None:
    """Change the crop (w, h) everywhere a config uses it: every codec (model head and
    ``GenerateTarget``) and every ``TopdownAffine``; heatmap codecs get a 1/4 heatmap."""

    def visit(node):
        if isinstance(node, dict):
            if 'input_size' in node:
                node['input_size'] = tuple(input_size)
                if node.get('type') in HEATMAP_CODECS:
                    node['heatmap_size'] = tuple(s // HEATMAP_STRIDE for s in input_size)
            for value in node.values():
                visit(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                visit(value)

    for value in cfg.values():
        visit(value)


def set_data_root(cfg: Config, data_root: str) -> None:
    """Point the data loaders and evaluators of a synthetic-set config at ``data_root``."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader]['dataset']
        dataset['data_root'] = data_root
        if dataset.get('bbox_file'):
            dataset['bbox_file'] = detection_path(data_root)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator]['ann_file'] = annotation_path(data_root, 'val')


def set_epochs(cfg: Config, epochs: int) -> None:
    """Train for ``epochs``, with the epoch-based schedulers ending there too."""
    cfg.train_cfg.max_epochs = epochs
    for scheduler in cfg.param_scheduler:
        if scheduler.get('by_epoch', True):
            scheduler['end'] = epochs


def own_visualizer(cfg: Config) -> None:
    """Let the runner name its visualizer after its own run.

    MMPose's default runtime names it ``'visualizer'`` and MMEngine keeps one instance per name
    in a process, so a second runner in the same process (the study's next run, or a caller's)
    would reuse the first one's and write its scalars into the first run's log directory.
    """
    cfg.visualizer.pop('name', None)


def generator_digest() -> str:
    """Hash of the generator's source, so a changed generator regenerates the set."""
    digest = hashlib.sha256()
    for module in (synthetic_scene, synthetic_coco):
        with open(module.__file__, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def prepare_data(data_root: str, **settings) -> float:
    """Generate the set unless ``data_root`` already holds one made with ``settings`` by
    this generator.

    Args:
        data_root (str): where the set goes.
        **settings: :func:`generate_dataset` arguments (``num_train``, ``num_val``, ``seed``).

    Returns:
        float: seconds spent generating (0 when reused).
    """
    settings = dict(settings, generator=generator_digest())
    stamp = osp.join(data_root, 'generation.json')
    if osp.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == settings:
                print(f'reusing the synthetic set in {data_root}')
                return 0.0
    start = time.perf_counter()
    generate_dataset(data_root, **{k: v for k, v in settings.items() if k != 'generator'})
    with open(stamp, 'w') as f:
        json.dump(settings, f)
    seconds = time.perf_counter() - start
    print(f'generated the synthetic set in {data_root} ({seconds:.1f} s)')
    return seconds
