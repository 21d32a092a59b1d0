"""Trace Poseur's sigma while training: per decoder layer and per iteration.

Trains a config with MMPose's Runner (by default the tiny test config on MMPose's four real
COCO test images) and records, for every iteration, each output's median sigma (after the
sigmoid, over all queries of the batch, noisy groups included) and its share above 0.99, the
gradient norm reaching that output's sigma branch, the loss terms and the pre-clip gradient
norm. At the end it scores the training images in eval mode and reports, per output, the
Spearman correlation of the predicted sigma with the absolute error (per axis, visible
keypoints). This is how the decoder's sigma saturation was found and its fix checked
(docs/recipe.md). With ``--checkpoint`` it only scores a trained model on its config's val set.

Example (about a minute on 2 cores)::

    python tools/analysis/sigma_trace.py --epochs 60 --seed 0 \
        --out work_dirs/sigma_trace/seed0.csv
    python tools/analysis/sigma_trace.py CONFIG --checkpoint CKPT
"""
import argparse
import copy
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence

import pandas as pd
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpose.apis import init_model
from scipy.stats import spearmanr

REPO = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
DEFAULT_CONFIG = osp.join(REPO, 'tests', 'data', 'td-reg_res18_poseur-1xb2-2e_coco-128x96.py')
SATURATED = 0.99


class SigmaTraceHook(Hook):
    """Records sigma and gradient statistics of every Poseur output after each iteration.

    Outputs are named ``coarse`` and ``dec{l}`` as the loss terms are.
    """

    priority = 'LOWEST'

    def __init__(self):
        self.rows: List[dict] = []
        self._sigma: Dict[str, torch.Tensor] = {}
        self._grad_sq: Dict[str, float] = {}

    def before_train(self, runner) -> None:
        head = runner.model.head
        head.coarse_sigma.register_forward_hook(
            lambda module, args, out: self._sigma.update(coarse=out.detach()))
        head.query_decoder.register_forward_hook(
            lambda module, args, out: self._sigma.update(
                {f'dec{i}': s.detach() for i, s in enumerate(out.sigma_logits)}))
        branches = dict(coarse=head.coarse_sigma.parameters())
        branches.update({f'dec{i}': branch.parameters()
                         for i, branch in enumerate(head.query_decoder.sigma_branches)})
        for name, params in branches.items():
            for param in params:
                param.register_hook(lambda grad, name=name: self._add_grad(name, grad))

    def _add_grad(self, name: str, grad: torch.Tensor) -> None:
        self._grad_sq[name] = self._grad_sq.get(name, 0.0) + float(grad.pow(2).sum())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        row = dict(iter=runner.iter + 1, lr=runner.optim_wrapper.get_lr()['lr'][0])
        hub = runner.message_hub
        if 'train/grad_norm' in hub.log_scalars:
            row['grad_norm'] = hub.get_scalar('train/grad_norm').current()
        for name, logits in self._sigma.items():
            sigma = logits.float().sigmoid()
            row[f'sigma_{name}'] = float(sigma.median())
            row[f'saturated_{name}'] = float((sigma > SATURATED).float().mean())
            row[f'grad_{name}'] = self._grad_sq.get(name, 0.0)**0.5
            row[f'loss_{name}'] = float(outputs[f'loss_{name}'])
        self.rows.append(row)
        self._grad_sq.clear()


def sigma_error_stats(model, cfg: Config) -> pd.DataFrame:
    """Per output, the median sigma and the Spearman correlation of sigma with the
    absolute error (per axis, visible keypoints) on ``cfg``'s validation images with their
    ground truth; eval mode, no flip.

    Args:
        model (TopdownPoseEstimator): a Poseur model.
        cfg (Config): a config with ``val_dataloader`` and ``codec``.

    Returns:
        pd.DataFrame: columns ``output``, ``median_sigma``, ``median_error``, ``spearman``.
    """
    loader = copy.deepcopy(cfg.val_dataloader)
    pipeline = loader.dataset.pipeline
    pipeline.insert(len(pipeline) - 1, dict(type='GenerateTarget', encoder=cfg.codec))
    model.eval()
    sigmas: Dict[str, list] = {}
    errors: Dict[str, list] = {}
    with torch.no_grad():
        for batch in Runner.build_dataloader(loader):
            data = model.data_preprocessor(batch, training=False)
            samples = data['data_samples']
            target = torch.cat([s.gt_instance_labels.keypoint_labels for s in samples])
            visible = torch.cat([s.gt_instance_labels.keypoint_weights for s in samples]) > 0
            out = model.head.forward_all(model.extract_feat(data['inputs']))
            outputs = dict(coarse=(out['coarse']['coords'], out['coarse']['sigma_logits']))
            outputs.update({f'dec{i}': pair for i, pair in enumerate(
                zip(out['layers'].coords, out['layers'].sigma_logits))})
            for name, (coords, logits) in outputs.items():
                sigmas.setdefault(name, []).append(logits.sigmoid()[visible])
                errors.setdefault(name, []).append((coords - target).abs()[visible])
    rows = []
    for name in sigmas:
        sigma, error = torch.cat(sigmas[name]).flatten(), torch.cat(errors[name]).flatten()
        rows.append(dict(output=name, median_sigma=float(sigma.median()),
                         median_error=float(error.median()),
                         spearman=float(spearmanr(sigma, error).statistic)))
    return pd.DataFrame(rows)


def trace(config: str = DEFAULT_CONFIG, epochs: int = 60, lr: float = 1e-3,
          batch_size: int = 4, warmup: int = 30, seed: int = 0,
          work_dir: Optional[str] = None) -> dict:
    """Train ``config`` as the sigma-collapse report did and trace sigma.

    Args:
        config (str): a Poseur config. Defaults to the tiny COCO test config.
        epochs (int): training epochs. Defaults to 60.
        lr (float): AdamW learning rate after warm-up. Defaults to 1e-3.
        batch_size (int): images per iteration. Defaults to 4.
        warmup (int): linear warm-up iterations (from 0.001 x lr). Defaults to 30.
        seed (int): the runner's seed. Defaults to 0.
        work_dir (str, optional): the runner's work dir. Defaults to a temporary one.

    Returns:
        dict: ``trace`` (one row per iteration) and ``final`` (:func:`sigma_error_stats`
        of the trained model), both DataFrames.
    """
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir or tempfile.mkdtemp(prefix='sigma_trace_')
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_begin=epochs + 1)
    cfg.train_dataloader.batch_size = batch_size
    cfg.optim_wrapper = dict(optimizer=dict(type='AdamW', lr=lr, weight_decay=1e-4),
                             clip_grad=dict(max_norm=1.0))
    cfg.param_scheduler = [dict(type='LinearLR', begin=0, end=warmup, start_factor=0.001,
                                by_epoch=False)]
    cfg.randomness = dict(seed=seed)
    cfg.default_hooks.logger.interval = 10
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1, save_last=False)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    hook = SigmaTraceHook()
    runner.register_hook(hook)
    runner.train()
    return dict(trace=pd.DataFrame(hook.rows), final=sigma_error_stats(runner.model, cfg))


def summary(result: dict) -> pd.DataFrame:
    """One row per output: median sigma at the first and last iteration, the first
    iteration whose median exceeds 0.95, the share saturated at the end, the sigma-branch
    gradient norm at the start and the end, the largest rise of the loss over the median
    of its previous 10 iterations (a spike; the loss is a negative log-likelihood, so
    ratios mean nothing), and the final Spearman correlation."""
    frame = result['trace']
    rows = []
    for name, spearman in zip(result['final']['output'], result['final']['spearman']):
        sigma = frame[f'sigma_{name}']
        loss = frame[f'loss_{name}']
        above = frame['iter'][sigma > 0.95]
        rows.append(dict(
            output=name, sigma_first=sigma.iloc[0], sigma_last=sigma.iloc[-1],
            first_iter_above_095=int(above.iloc[0]) if len(above) else None,
            saturated_last=frame[f'saturated_{name}'].iloc[-1],
            grad_first=frame[f'grad_{name}'].iloc[0], grad_last=frame[f'grad_{name}'].iloc[-1],
            max_loss_rise=float((loss - loss.rolling(10, min_periods=1).median().shift()).max()),
            spearman=spearman))
    return pd.DataFrame(rows)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG)
    parser.add_argument('--epochs', type=int, default=60)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--warmup', type=int, default=30, help='warm-up iterations')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--work-dir')
    parser.add_argument('--out', help='CSV file for the per-iteration trace')
    parser.add_argument('--checkpoint',
                        help='only score this trained checkpoint of CONFIG on its val set')
    args = parser.parse_args(argv)
    if args.checkpoint:
        model = init_model(args.config, args.checkpoint, device='cpu')
        stats = sigma_error_stats(model, Config.fromfile(args.config))
        print(stats.to_markdown(index=False, floatfmt='.3g'))
        return
    result = trace(args.config, args.epochs, args.lr, args.batch_size, args.warmup,
                   args.seed, args.work_dir)
    if args.out:
        result['trace'].to_csv(args.out, index=False)
    print(summary(result).to_markdown(index=False, floatfmt='.3g'))


if __name__ == '__main__':
    main()
