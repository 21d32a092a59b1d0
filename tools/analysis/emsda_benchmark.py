"""EMSDA micro-benchmark: the op against two reference formulations, at Poseur's sizes.

Every variant maps (memory, sampling locations, attention weights) to the concatenated head
outputs (B, Q, C) that feed the output projection:

- ``emsda``: :func:`poseur_mm.ops.emsda_sampling` (shared memory, hand-written CPU backward),
  then each head's projection C -> C / H of its weighted sample.
- ``emsda-autograd``: the same with autograd through ``embedding_bag`` (the path used on
  other devices and for half-precision memories).
- ``per-head-copy``: the authors' formulation: the memory copied once per head, sampled by
  mmcv's ``multi_scale_deformable_attn_pytorch`` with C channels per head, same projection.
- ``deformable-detr``: Deformable-DETR's attention: Linear(C, C) over the whole memory,
  then mmcv's sampling with C / H channels per head.

Forward is timed under ``torch.no_grad()``; forward+backward computes the gradients of the
memory, the locations, the weights and the projections. Times are medians over repeats
after warm-up, variants interleaved round-robin so that load from other jobs hits all of
them alike. Peak memory: see :func:`tools.analysis.measure.peak_memory_mib`.

Run ``python -m tools.analysis.emsda_benchmark --help`` from the repository root.
"""
import argparse
import math
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn
from tqdm import tqdm

from poseur_mm.ops.emsda import _emsda_sampling_autograd, emsda_sampling
from tools.analysis.emsda_reference import deformable_detr_sampling, per_head_copy_sampling
from tools.analysis.measure import machine_summary, peak_memory_mib, set_threads, time_interleaved
from tools.analysis.report import markdown_table, write_tables

# (H_l, W_l) of the four stride-4..32 maps of a top-down input (h x w)
LEVELS = {
    '256x192': ((64, 48), (32, 24), (16, 12), (8, 6)),
    '384x288': ((96, 72), (48, 36), (24, 18), (12, 9)),
    '64x48': ((16, 12), (8, 6), (4, 3), (2, 2)),  # --quick
}
VARIANTS = ('emsda', 'emsda-autograd', 'per-head-copy', 'deformable-detr')
FIELDS = ('input', 'batch', 'queries', 'variant', 'forward_ms', 'forward_backward_ms', 'peak_mib',
          'forward_vs_emsda', 'forward_backward_vs_emsda', 'peak_vs_emsda')
# (title, row key, format) of the markdown table's columns
COLUMNS = (('input', 'input', '{}'), ('B', 'batch', '{}'), ('Q', 'queries', '{}'),
           ('variant', 'variant', '{}'), ('forward ms', 'forward_ms', '{:.2f}'),
           ('fwd+bwd ms', 'forward_backward_ms', '{:.2f}'),
           ('peak MiB (fwd+bwd)', 'peak_mib', '{:.1f}'),
           ('forward / emsda', 'forward_vs_emsda', '{:.2f}'),
           ('fwd+bwd / emsda', 'forward_backward_vs_emsda', '{:.2f}'),
           ('peak / emsda', 'peak_vs_emsda', '{:.2f}'))


class Problem:
    """Inputs and parameters of one EMSDA call: reference points uniform in the image,
    sampling offsets of a few pixels around them, softmax attention weights.

    Args:
        levels (Sequence[tuple]): (H_l, W_l) of every level.
        batch (int): B.
        queries (int): Q.
        device (torch.device): where the tensors live.
        heads, points, channels (int): H, P and C. Default to 8, 4 and 256.
        seed (int): random seed. Defaults to 0.
    """

    def __init__(self,
                 levels: Sequence[tuple],
                 batch: int,
                 queries: int,
                 device: torch.device,
                 heads: int = 8,
                 points: int = 4,
                 channels: int = 256,
                 seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        num_levels = len(levels)
        self.spatial_shapes = torch.tensor(levels, dtype=torch.long, device=device)
        num_value = sum(h * w for h, w in levels)
        sizes = self.spatial_shapes.flip(-1).float().view(1, 1, 1, num_levels, 1, 2)
        reference = torch.rand(batch, queries, 1, 1, 1, 2, generator=gen)
        offsets = 2 * torch.randn(batch, queries, heads, num_levels, points, 2, generator=gen)
        tensors = dict(
            value=torch.randn(batch, num_value, channels, generator=gen),
            locations=reference + offsets / sizes.cpu(),
            weights=torch.randn(batch, queries, heads, num_levels * points,
                                generator=gen).softmax(-1).view(batch, queries, heads, num_levels,
                                                                points),
            head_proj_weight=torch.randn(heads, channels, channels // heads, generator=gen) /
            channels**0.5,
            head_proj_bias=torch.zeros(heads, channels // heads))
        self.tensors = {name: t.to(device) for name, t in tensors.items()}
        self.value_proj = nn.Linear(channels, channels).to(device)

    def leaves(self, grad: bool) -> Dict[str, Tensor]:
        """Fresh leaf views of the inputs, requiring grad if asked."""
        if grad:
            self.value_proj.zero_grad(set_to_none=True)
        return {name: t.detach().requires_grad_(grad) for name, t in self.tensors.items()}

    def run(self, variant: str, grad: bool) -> Tensor:
        """One call of ``variant``; with ``grad`` also its backward. Returns (B, Q, C)."""
        inputs = self.leaves(grad)
        args = (inputs['value'], self.spatial_shapes, inputs['locations'], inputs['weights'])
        with torch.set_grad_enabled(grad):
            if variant == 'deformable-detr':
                output = deformable_detr_sampling(*args, value_proj=self.value_proj)
            else:
                sample = {
                    'emsda': emsda_sampling,
                    'emsda-autograd': _emsda_sampling_autograd,
                    'per-head-copy': per_head_copy_sampling
                }[variant]
                sampled = sample(*args)  # (B, Q, H, C)
                projected = torch.einsum('bqhc,hcd->bqhd', sampled, inputs['head_proj_weight'])
                projected = projected + inputs['head_proj_bias']
                output = projected.flatten(2)
            if grad:
                output.sum().backward()
        return output


def run_benchmark(inputs: Sequence[str],
                  batches: Sequence[int],
                  queries: Sequence[int],
                  variants: Sequence[str],
                  warmup: int,
                  repeats: int,
                  device: torch.device,
                  progress: bool = True) -> List[dict]:
    """Time and measure every variant on every case.

    Returns:
        list[dict]: one row per case and variant with the keys of ``FIELDS``; ratios are
        the variant over ``emsda`` measured in the same run (NaN without an ``emsda`` row).
    """
    cases = [(name, b, q) for name in inputs for b in batches for q in queries]
    bar = tqdm(total=len(cases) * 3, desc='EMSDA benchmark', disable=not progress)
    rows, problems = [], []
    for name, batch, num_queries in cases:
        problem = Problem(LEVELS[name], batch, num_queries, device)
        problems.append(problem)
        row = {v: dict(input=name, batch=batch, queries=num_queries, variant=v) for v in variants}
        for grad, key in ((False, 'forward_ms'), (True, 'forward_backward_ms')):
            bar.set_postfix_str(f'{name} B={batch} Q={num_queries} {key}')
            fns = {v: (lambda v=v, g=grad: problem.run(v, g)) for v in variants}
            for variant, timing in time_interleaved(fns, warmup, repeats, device).items():
                row[variant][key] = timing.ms
            bar.update()
        rows.extend(row.values())
    # memory last: peak_memory_mib changes malloc's behaviour for the rest of the process
    for problem, first in zip(problems, range(0, len(rows), len(variants))):
        for row in rows[first:first + len(variants)]:
            bar.set_postfix_str(f"{row['input']} B={row['batch']} Q={row['queries']} memory")
            row['peak_mib'] = peak_memory_mib(lambda: problem.run(row['variant'], True), device)
        bar.update()
    bar.close()
    add_ratios(rows)
    return rows


def add_ratios(rows: List[dict]) -> None:
    """Each row's times and peak over the ``emsda`` row of the same case."""
    base = {(r['input'], r['batch'], r['queries']): r for r in rows if r['variant'] == 'emsda'}
    for row in rows:
        ref = base.get((row['input'], row['batch'], row['queries']))
        for key, ratio in (('forward_ms', 'forward_vs_emsda'),
                           ('forward_backward_ms', 'forward_backward_vs_emsda'), ('peak_mib',
                                                                                  'peak_vs_emsda')):
            row[ratio] = row[key] / ref[key] if ref and ref[key] > 0 else math.nan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared with :mod:`tools.analysis.benchmark`."""
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch threads (default: the CPUs this process may use)')
    parser.add_argument(
        '--warmup', type=int, default=None, help='untimed rounds (default 2, --quick 1)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=None,
        help='timed rounds, the median is reported (default 5, --quick 2)')
    parser.add_argument('--device', default='cpu', help='torch device (default cpu)')
    parser.add_argument('--quick', action='store_true', help='small sizes and few repeats, for CI')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='EMSDA sampling against the per-head-copy and Deformable-DETR '
        'formulations: forward and forward+backward time, peak memory.')
    add_arguments(parser)
    parser.add_argument(
        '--inputs',
        nargs='+',
        choices=sorted(LEVELS),
        default=None,
        help='input sizes h x w (default 256x192 384x288, --quick 64x48)')
    parser.add_argument(
        '--batches',
        nargs='+',
        type=int,
        default=None,
        help='batch sizes (default 1 32, --quick 1 2)')
    parser.add_argument(
        '--queries',
        nargs='+',
        type=int,
        default=None,
        help='queries: 17 keypoints, 68 with 3 noisy groups '
        '(default 17 68, --quick 17)')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument('--out-dir', default=None, help='also write .md and .csv here')
    return parser.parse_args(argv)


def resolve_defaults(args: argparse.Namespace) -> None:
    """Fill the timing defaults (full run or ``--quick``) in place."""
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5


def run(argv: Optional[Sequence[str]] = None) -> List[dict]:
    """Run the micro-benchmark with command-line arguments ``argv``; returns its rows."""
    args = parse_args(argv)
    resolve_defaults(args)
    set_threads(args.threads)
    device = torch.device(args.device)
    header = (f'EMSDA micro-benchmark on {machine_summary(device)}. H=8, L=4, P=4, C=256; '
              f'median of {args.repeats} runs after {args.warmup} warm-up.')
    print(header)
    rows = run_benchmark(
        inputs=args.inputs or (['64x48'] if args.quick else ['256x192', '384x288']),
        batches=args.batches or ([1, 2] if args.quick else [1, 32]),
        queries=args.queries or ([17] if args.quick else [17, 68]),
        variants=args.variants,
        warmup=args.warmup,
        repeats=args.repeats,
        device=device,
        progress=not args.no_progress)
    table = markdown_table(rows, COLUMNS)
    print(table)
    if args.out_dir:
        for path in write_tables(args.out_dir, 'emsda_benchmark', header, table, rows, FIELDS):
            print(f'wrote {path}')
    return rows


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point."""
    run(argv)


if __name__ == '__main__':
    main()
