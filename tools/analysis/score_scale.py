"""COCO AP with the keypoint scores scaled, as the release's 0.7 factor does.

The release multiplies its uncertainty score by 0.7 inside its flip fusion (design note
section 5), which changes only how the keypoint scores weigh against the bbox score in
``bbox_rle`` rescoring (instance score = bbox score + mean + max of the keypoint scores).
This runs a checkpoint once on a config's test (and optionally val) data and evaluates the
same predictions with the config's evaluator at each scale.

Example::

    python tools/analysis/score_scale.py CONFIG CKPT --scales 1 0.7 --splits test val
"""
import argparse
import copy
from typing import Dict, Optional, Sequence

import pandas as pd
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpose.apis import init_model
from mmpose.registry import METRICS


def predict(model, loader_cfg: dict) -> tuple:
    """Predictions of ``model`` on a dataloader config, as the evaluator receives them.

    Returns:
        tuple: the dataset's metainfo and a list of (data_batch, list of sample dicts).
    """
    loader = Runner.build_dataloader(loader_cfg)
    batches = []
    with torch.no_grad():
        for data_batch in loader:
            samples = model.test_step(data_batch)
            batches.append((data_batch, [sample.to_dict() for sample in samples]))
    return loader.dataset.metainfo, batches


def evaluate(metric_cfg: dict, metainfo: dict, batches: list, scale: float) -> Dict[str, float]:
    """The metric of ``batches`` with every keypoint score multiplied by ``scale``."""
    metric = METRICS.build(copy.deepcopy(metric_cfg))
    metric.dataset_meta = metainfo
    for data_batch, samples in batches:
        samples = copy.deepcopy(samples)
        for sample in samples:
            sample['pred_instances']['keypoint_scores'] *= scale
        metric.process(data_batch, samples)
    return metric.evaluate(sum(len(samples) for _, samples in batches))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--scales', type=float, nargs='+', default=[1.0, 0.7])
    parser.add_argument('--splits', nargs='+', choices=['test', 'val'], default=['test'])
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    model = init_model(cfg, args.checkpoint, device='cpu')
    rows = []
    for split in args.splits:
        metainfo, batches = predict(model, cfg[f'{split}_dataloader'])
        for scale in args.scales:
            result = evaluate(cfg[f'{split}_evaluator'], metainfo, batches, scale)
            rows.append(dict(split=split, scale=scale,
                             **{k.split('/')[-1]: v for k, v in result.items()}))
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt='.4f'))


if __name__ == '__main__':
    main()
