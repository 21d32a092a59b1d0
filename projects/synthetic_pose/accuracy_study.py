"""Accuracy against input resolution: Poseur, heatmap and RLE on the synthetic set.

The three synthetic-set configs of ``configs/`` beside this file (same ResNet-18 from
scratch, augmentation, optimizer and schedule; they differ only in neck, head and codec)
are trained with MMPose's runner at each input size and evaluated once at the end by
``CocoMetric`` on the ground-truth boxes of the validation split. The paper's claim under
test: heatmaps lose accuracy at low resolution from quantisation, direct regression does not.

Writes ``accuracy_study.md``, ``.csv`` and ``.png`` (AP against input size) to ``--out-dir``
after every run, with the study's settings in ``accuracy_study.json`` and a work directory per
run. ``--resume`` keeps the finished runs of that directory and trains only the missing ones,
so a study can be split over several sessions or machines. ``--quick`` trains one iteration
per run on a set of a few images: it checks the pipeline, its AP numbers mean nothing.

Run ``python -m projects.synthetic_pose.accuracy_study --help`` from the repository root (or
``python -m tools.analysis.benchmark --accuracy-study``).
"""
import argparse
import json
import math
import os.path as osp
import shlex
import sys
import time
from typing import Dict, List, Optional, Sequence

import pandas as pd
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from tqdm import tqdm

from tools.analysis.measure import machine_summary, set_threads
from tools.analysis.report import markdown_table, write_tables
from .synthetic_runs import (SYNTHETIC_CONFIGS, generator_digest, own_visualizer, prepare_data,
                             set_data_root, set_epochs, set_input_size)

# model name -> config; 'heatmap' is the baseline the others are compared with
MODELS = {
    'Poseur': 'td-reg_res18_poseur-1xb16-10e_synthetic-64x48.py',
    'heatmap': 'td-hm_res18-s16_1xb16-10e_synthetic-64x48.py',
    'RLE': 'td-reg_res18_rle-1xb16-10e_synthetic-64x48.py',
}
BASELINE = 'heatmap'
INPUT_SIZES = ((192, 256), (96, 128), (48, 64))  # (w, h), largest first
# the full study uses the demo's set and schedule (projects/synthetic_pose); its cost on a
# 2-core CPU is in docs/benchmarks.md
FULL = dict(num_train=2500, num_val=250, epochs=10, data_root='data/synthetic_pose')
QUICK = dict(num_train=4, num_val=2, epochs=1, data_root=None)  # None: under --out-dir
METRICS = ('AP', 'AP .5', 'AP .75', 'AR')
FIELDS = ('model', 'input', 'AP', 'AP .5', 'AP .75', 'AR', 'iterations', 'train_s',
          'AP_vs_heatmap')
# (title, row key, format) of the markdown table's columns
COLUMNS = (('model', 'model', '{}'), ('input', 'input', '{}'), ('AP', 'AP', '{:.3f}'),
           ('AP .5', 'AP .5', '{:.3f}'), ('AP .75', 'AP .75', '{:.3f}'), ('AR', 'AR', '{:.3f}'),
           ('AP - heatmap AP (points)', 'AP_vs_heatmap', '{:+.1f}'),
           ('iterations', 'iterations', '{}'), ('train+val s', 'train_s', '{:.0f}'))


def train_and_evaluate(config: str, input_size: Sequence[int], data_root: str, epochs: int,
                       work_dir: str) -> Dict[str, float]:
    """Train ``config`` at ``input_size`` (w, h) for ``epochs`` and validate once at the end.

    Returns:
        dict: the COCO metrics of :data:`METRICS`, ``iterations`` and ``train_s``.
    """
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    own_visualizer(cfg)
    set_data_root(cfg, data_root)
    set_input_size(cfg, input_size)
    set_epochs(cfg, epochs)
    cfg.train_cfg.val_interval = epochs
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)  # the last only
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    scalars = runner.message_hub.log_scalars
    result = {name: float(scalars[f'val/coco/{name}'].current()) for name in METRICS}
    return dict(result, iterations=runner.iter, train_s=round(train_s, 1))


def add_comparisons(rows: List[dict]) -> None:
    """``AP_vs_heatmap``: AP points (x100) over the heatmap model at the same input size;
    ``None`` where that heatmap run is not (yet) among ``rows``."""
    baseline = {row['input']: row['AP'] for row in rows if row['model'] == BASELINE}
    for row in rows:
        base = baseline.get(row['input'])
        row['AP_vs_heatmap'] = None if base is None else round(100 * (row['AP'] - base), 1)


def pixels(input_name: str) -> int:
    """Pixel count of a crop named ``'<h>x<w>'``."""
    return math.prod(map(int, input_name.split('x')))


def order_rows(rows: List[dict]) -> List[dict]:
    """Largest input first, models in :data:`MODELS` order."""
    models = list(MODELS)
    return sorted(rows, key=lambda r: (-pixels(r['input']), models.index(r['model'])))


def load_finished(out_dir: str, settings: dict) -> List[dict]:
    """The rows of the study in ``out_dir`` (``--resume``), checked to have been trained with
    the same ``settings`` (set sizes, seed, epochs, generator).

    Returns:
        list[dict]: rows with keys :data:`FIELDS` but ``AP_vs_heatmap``.
    """
    settings_path = osp.join(out_dir, 'accuracy_study.json')
    if not osp.exists(settings_path):
        raise FileNotFoundError(f'--resume: {settings_path} not found, so {out_dir} holds no '
                                'study to resume; run without --resume to start one there')
    with open(settings_path) as f:
        earlier = json.load(f)
    if earlier != settings:
        raise ValueError(f'--resume: the study in {out_dir} was run with {earlier}, this one '
                         f'with {settings}; give the same --num-train, --num-val, --epochs and '
                         '--seed, or another --out-dir')
    # round_trip: the kept rows equal the ones written, to the last bit
    rows = pd.read_csv(osp.join(out_dir, 'accuracy_study.csv'), float_precision='round_trip')
    return rows.drop(columns='AP_vs_heatmap').to_dict('records')


def plot(rows: List[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    # x: the crop's pixel count, on a log scale; labelled with the crop size (h x w)
    for model in dict.fromkeys(r['model'] for r in rows):
        points = sorted((pixels(r['input']), r['AP']) for r in rows if r['model'] == model)
        ax.plot(*zip(*points), 'o-', label=model)
    ax.set_xscale('log', base=2)
    inputs = sorted({r['input'] for r in rows}, key=pixels)
    ax.set_xticks([pixels(name) for name in inputs], inputs)
    ax.minorticks_off()
    ax.set(xlabel='input size (h x w)', ylabel='COCO keypoint AP (ground-truth boxes)',
           title='synthetic set: accuracy against input size', ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(rows: List[dict], out_dir: str, header: str, settings: dict) -> List[str]:
    """Write ``accuracy_study.md``, ``.csv``, ``.png`` and the settings ``.json``; returns
    their paths."""
    paths = write_tables(out_dir, 'accuracy_study', header,
                         markdown_table(rows, COLUMNS, missing='n/a'), rows, FIELDS)
    paths.append(osp.join(out_dir, 'accuracy_study.png'))
    plot(rows, paths[-1])
    paths.append(osp.join(out_dir, 'accuracy_study.json'))
    with open(paths[-1], 'w') as f:
        json.dump(settings, f)
    return paths


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train Poseur, heatmap and RLE models on the synthetic set at 256x192, '
        '128x96 and 64x48 and compare their COCO AP.')
    parser.add_argument('--quick', action='store_true',
                        help=f"{QUICK['num_train']} training images, one epoch: checks the "
                        'pipeline only')
    parser.add_argument('--num-train', type=int, help=f"training images (default "
                        f"{FULL['num_train']}, --quick {QUICK['num_train']})")
    parser.add_argument('--num-val', type=int, help=f"validation images (default "
                        f"{FULL['num_val']}, --quick {QUICK['num_val']})")
    parser.add_argument('--epochs', type=int, help=f"epochs per run (default {FULL['epochs']}, "
                        f"--quick {QUICK['epochs']})")
    parser.add_argument('--models', nargs='+', choices=list(MODELS), default=list(MODELS),
                        help='models to train (default: all); without heatmap the AP '
                        'difference column is n/a')
    parser.add_argument('--seed', type=int, default=0, help='seed of the synthetic set')
    parser.add_argument('--input-sizes', type=int, nargs='+', metavar='W H',
                        help='(w, h) pairs to study, e.g. 48 64 96 128 (default: 192 256 96 '
                        '128 48 64)')
    parser.add_argument('--data-root', help=f"where the set is written (default "
                        f"{FULL['data_root']}, the demo's; --quick: under --out-dir)")
    parser.add_argument('--out-dir', default='work_dirs/accuracy_study')
    parser.add_argument('--resume', action='store_true',
                        help='keep the runs already in --out-dir (same settings required) and '
                        'train only the missing model/size pairs')
    parser.add_argument('--threads', type=int, default=2, help='torch threads (default 2)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def run(argv: Optional[Sequence[str]] = None) -> List[dict]:
    """Run the study with command-line arguments ``argv``.

    Returns:
        list[dict]: one row per model and input size, keys :data:`FIELDS`.
    """
    args = parse_args(argv)
    defaults = QUICK if args.quick else FULL
    num_train = args.num_train or defaults['num_train']
    num_val = args.num_val or defaults['num_val']
    epochs = args.epochs or defaults['epochs']
    data_root = args.data_root or defaults['data_root'] or osp.join(args.out_dir, 'data')
    data_root = data_root.rstrip('/') + '/'
    sizes = INPUT_SIZES
    if args.input_sizes:
        if len(args.input_sizes) % 2:
            raise ValueError(f'--input-sizes takes (w, h) pairs, got {args.input_sizes}')
        sizes = tuple(zip(args.input_sizes[::2], args.input_sizes[1::2]))
    set_threads(args.threads)
    prepare_data(data_root, num_train=num_train, num_val=num_val, seed=args.seed)
    command = 'python -m projects.synthetic_pose.accuracy_study ' + shlex.join(
        sys.argv[1:] if argv is None else list(argv))
    header = (f'Accuracy study on {machine_summary(torch.device("cpu"))}: {num_train} training '
              f'and {num_val} validation images (seed {args.seed}), {epochs} epochs of batch 16 '
              f'per run, AP of CocoMetric on ground-truth boxes. Command: `{command}`')
    print(header)
    settings = dict(num_train=num_train, num_val=num_val, seed=args.seed, epochs=epochs,
                    generator=generator_digest())
    rows = order_rows(load_finished(args.out_dir, settings)) if args.resume else []
    finished = {(row['model'], row['input']) for row in rows}
    runs = [(model, f'{height}x{width}') for width, height in sizes for model in args.models]
    runs = [run for run in runs if run not in finished]
    print(f'{len(runs)} runs to train' + (f', {len(rows)} kept from {args.out_dir}'
                                          if args.resume else ''))
    for model, name in tqdm(runs, desc='accuracy study', disable=args.no_progress):
        height, width = map(int, name.split('x'))
        result = train_and_evaluate(
            osp.join(SYNTHETIC_CONFIGS, MODELS[model]), (width, height), data_root, epochs,
            osp.join(args.out_dir, f'{model}-{name}'))
        rows = order_rows(rows + [dict(model=model, input=name, **result)])
        # rewritten after every run: an interrupted study keeps the runs it finished
        add_comparisons(rows)
        write_outputs(rows, args.out_dir, header, settings)
    add_comparisons(rows)  # a resumed study may have had nothing left to train
    paths = write_outputs(rows, args.out_dir, header, settings)
    print(markdown_table(rows, COLUMNS, missing='n/a'))
    for path in paths:
        print(f'wrote {path}')
    return rows


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point."""
    run(argv)


if __name__ == '__main__':
    main()
