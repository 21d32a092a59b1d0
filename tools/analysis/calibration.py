"""Is Poseur's uncertainty honest? Coverage and ranking of its per-keypoint Laplace scales.

Runs a checkpoint through MMPose's own prediction path (``test_step``: the config's test
pipeline and flip test) on a COCO-format set with ground truth and compares each visible
keypoint's error with its predicted scale b (``keypoint_sigmas``, image pixels), per axis:

- coverage of the central Laplace interval of probability c: the share of errors with
  ``|error| <= -b ln(1 - c)``, for c = 50 % and 90 %, per keypoint type and overall;
- the Spearman correlation of b with ``|error|``;
- a reliability plot: expected against observed coverage for c = 5 %, 10 %, ..., 95 %.

With ``--temperature`` it also fits one factor T on the *training* images (through the
validation pipeline, no augmentation; T = mean(|error| / b), the maximum-likelihood scale of
a Laplace) and reports the validation coverage of T * b. It never fits on the evaluated set.

Example::

    python tools/analysis/calibration.py CONFIG CKPT --temperature --out-dir work_dirs/calib
"""
import argparse
import copy
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import matplotlib
import numpy as np
import pandas as pd
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpose.apis import init_model
from scipy.stats import spearmanr

matplotlib.use('Agg')  # files only
import matplotlib.pyplot as plt  # noqa: E402

LEVELS = (0.5, 0.9)
CURVE = np.linspace(0.05, 0.95, 19)


def coverage(errors: np.ndarray, scales: np.ndarray, level: float) -> float:
    """Share of ``errors`` inside the central Laplace interval of probability ``level``.

    Args:
        errors (np.ndarray): absolute errors, any shape.
        scales (np.ndarray): Laplace scales b, the same shape.
        level (float): interval probability c in (0, 1).

    Returns:
        float: the share of ``|error| <= -b ln(1 - c)``.
    """
    return float(np.mean(errors <= -scales * np.log1p(-level)))


def fit_temperature(errors: np.ndarray, scales: np.ndarray) -> float:
    """The factor T that maximises the Laplace likelihood of ``errors`` under scales
    ``T * scales``: mean(|error| / b)."""
    return float(np.mean(errors / scales))


def collect(model, loader_cfg: dict) -> pd.DataFrame:
    """Absolute error and predicted scale of every visible keypoint on both axes.

    Args:
        model (TopdownPoseEstimator): a Poseur model (``keypoint_sigmas`` in predictions).
        loader_cfg (dict): a dataloader config whose pipeline packs the ground truth.

    Returns:
        pd.DataFrame: one row per visible keypoint and axis: ``keypoint`` (index),
        ``axis`` ('x' or 'y'), ``error`` and ``sigma`` (image pixels).
    """
    rows = []
    model.eval()
    with torch.no_grad():
        for batch in Runner.build_dataloader(loader_cfg):
            for sample in model.test_step(batch):
                pred, gt = sample.pred_instances, sample.gt_instances
                visible = np.asarray(gt.keypoints_visible).reshape(-1) > 0
                error = np.abs(pred.keypoints[0] - np.asarray(gt.keypoints)[0])  # (K, 2)
                for axis, name in enumerate('xy'):
                    index = np.flatnonzero(visible)
                    rows.append(pd.DataFrame(dict(
                        keypoint=index, axis=name, error=error[index, axis],
                        sigma=pred.keypoint_sigmas[0][index, axis])))
    return pd.concat(rows, ignore_index=True)


def report(frame: pd.DataFrame, names: Sequence[str], temperature: float = 1.0) -> pd.DataFrame:
    """Coverage at :data:`LEVELS` and Spearman's rho, per keypoint type and overall.

    Args:
        frame (pd.DataFrame): :func:`collect`'s output.
        names (Sequence[str]): keypoint names by index.
        temperature (float): factor on every scale. Defaults to 1.

    Returns:
        pd.DataFrame: one row per keypoint type and an ``all`` row.
    """
    def row(name: str, part: pd.DataFrame) -> dict:
        errors, scales = part['error'].to_numpy(), temperature * part['sigma'].to_numpy()
        out = dict(keypoint=name, n=len(part))
        for level in LEVELS:
            out[f'coverage_{round(level * 100)}'] = coverage(errors, scales, level)
        out['spearman'] = float(spearmanr(scales, errors).statistic)
        out['median_sigma_px'] = float(np.median(scales))
        out['median_error_px'] = float(np.median(errors))
        return out

    rows = [row(names[k], part) for k, part in frame.groupby('keypoint')]
    rows.append(row('all', frame))
    return pd.DataFrame(rows)


def reliability_plot(curves: Dict[str, pd.DataFrame], path: str) -> None:
    """Expected against observed coverage, one line per entry of ``curves`` (label ->
    :func:`collect` frame with its scales already scaled)."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], 'k:', label='calibrated')
    for label, frame in curves.items():
        errors, scales = frame['error'].to_numpy(), frame['sigma'].to_numpy()
        ax.plot(CURVE, [coverage(errors, scales, c) for c in CURVE], 'o-', ms=3, label=label)
    ax.set(xlabel='expected coverage (Laplace interval)', ylabel='observed coverage',
           xlim=(0, 1), ylim=(0, 1), title='keypoint uncertainty reliability')
    ax.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def training_loader(cfg: Config) -> dict:
    """The training images through the validation pipeline: ground-truth boxes, no
    augmentation."""
    loader = copy.deepcopy(cfg.val_dataloader)
    train = cfg.train_dataloader.dataset
    loader.dataset.update(ann_file=train.ann_file, data_prefix=train.data_prefix,
                          data_root=train.get('data_root', loader.dataset.get('data_root')),
                          bbox_file=None, test_mode=True)
    return loader


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--temperature', action='store_true',
                        help='also fit one scale factor on the training images')
    parser.add_argument('--out-dir', default='work_dirs/calibration')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    model = init_model(cfg, args.checkpoint, device='cpu')
    names = [model.dataset_meta['keypoint_id2name'][k]
             for k in range(model.dataset_meta['num_keypoints'])]
    os.makedirs(args.out_dir, exist_ok=True)

    val = collect(model, cfg.val_dataloader)
    tables = {'val': report(val, names)}
    curves = {'val': val}
    if args.temperature:
        temperature = fit_temperature(*collect(model, training_loader(cfg))[['error', 'sigma']]
                                      .to_numpy().T)
        tables[f'val, T = {temperature:.3f} fitted on train'] = report(val, names, temperature)
        curves[f'T = {temperature:.3f} (train)'] = val.assign(sigma=temperature * val['sigma'])
    for title, table in tables.items():
        print(f'\n{title}\n' + table.to_markdown(index=False, floatfmt='.3f'))
    pd.concat([t.assign(setting=k) for k, t in tables.items()]).to_csv(
        osp.join(args.out_dir, 'calibration.csv'), index=False)
    reliability_plot(curves, osp.join(args.out_dir, 'reliability.png'))
    print(f'wrote {args.out_dir}/calibration.csv and reliability.png')


if __name__ == '__main__':
    main()
