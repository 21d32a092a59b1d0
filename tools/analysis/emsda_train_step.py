"""What EMSDA's hand-written CPU backward buys on a whole training step.

Times ``model.train_step`` (forward, loss, backward, optimizer step) of a Poseur config on a
random batch twice per round, once with the hand-written CPU backward of
:func:`poseur_mm.ops.emsda_sampling` and once with autograd through ``embedding_bag`` (the
path every other device takes), interleaved in one process; prints the medians and their
ratio. The backward is kept while the step is >= 5 % faster with it (issue 17; numbers in
``poseur_mm/ops/emsda.py``).

Run from the repository root::

    python -m tools.analysis.emsda_train_step --threads 2 --batch 32 --repeats 8
"""
import argparse
import copy
import logging
import os

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample

import poseur_mm.ops.emsda as emsda
from tools.analysis.measure import machine_summary, set_threads, time_interleaved

DEFAULT_CONFIG = ('configs/body_2d_keypoint/poseur/coco/'
                  'td-reg_res50_poseur-8xb32-325e_coco-256x192.py')
# the dtypes the dispatcher sends to the hand-written backward; () sends all to autograd
VARIANTS = {'cpu-backward': emsda.SPARSE_DTYPES, 'autograd': ()}


def random_batch(cfg: Config, size: int) -> dict:
    """``size`` random uint8 crops of the config's input size with random visible keypoint
    targets, as ``train_step`` takes them."""
    width, height = cfg.codec['input_size']
    num_joints = cfg.model.head.num_joints
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(size):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8))
        sample = PoseDataSample(metainfo=dict(input_size=(width, height)))
        sample.gt_instance_labels = InstanceData(
            keypoint_labels=torch.rand(1, num_joints, 2, generator=gen) * 0.8 + 0.1,
            keypoint_weights=(torch.rand(1, num_joints, generator=gen) > 0.2).float())
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=8)
    args = parser.parse_args()
    set_threads(args.threads)
    cfg = Config.fromfile(args.config)
    init_default_scope('mmpose')
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # no per-parameter lr lines
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pop('init_cfg', None)  # no pretrained download
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = random_batch(cfg, args.batch)

    def step(variant: str) -> None:
        emsda.SPARSE_DTYPES = VARIANTS[variant]
        model.train_step(data, optim_wrapper)

    load = os.getloadavg()[0]
    timings = time_interleaved({v: (lambda v=v: step(v)) for v in VARIANTS}, args.warmup,
                               args.repeats, torch.device('cpu'))
    emsda.SPARSE_DTYPES = VARIANTS['cpu-backward']
    print(f'{machine_summary(torch.device("cpu"))}; batch {args.batch}; load {load:.1f} -> '
          f'{os.getloadavg()[0]:.1f}; medians of {args.repeats} steps')
    for variant, timing in timings.items():
        print(f'{variant:13s} {timing.ms / 1e3:7.2f} s  (process CPU {timing.cpu_ms / 1e3:.2f} s)')
    ratio = timings['autograd'].ms / timings['cpu-backward'].ms
    print(f'autograd / cpu-backward: {ratio:.3f} (keep the CPU backward while >= 1.05)')


if __name__ == '__main__':
    main()
