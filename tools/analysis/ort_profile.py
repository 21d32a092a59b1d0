"""Where an exported Poseur graph spends its time in onnxruntime, part by part.

Exports a config's :class:`poseur_mm.deploy.PoseurDeployModel` graph, runs it with
onnxruntime's per-node profiler (the session :func:`poseur_mm.deploy.create_session` makes,
batch fixed) and sums the kernel time of every node per part of the model:

- ``backbone``, ``neck``;
- ``EMSDA sampling``: the cross-attentions' ``Gather`` of the memory rows and the
  ``MatMul`` that weights them (:func:`poseur_mm.ops.emsda_onnx.emsda_sampling_gather`);
- ``cross-attention, other``, ``self-attention``, ``FFN``: the rest of the decoder layers;
- ``decoder, other``: the reference-point and output branches, norms and residual adds;
- ``other``: the input normalisation, the memory, the keypoint encoder, the coarse
  regression, the decoding and onnxruntime's layout reorders.

The last column is each part's time over the backbone's: the lower bound of what the head
and neck add to the bare backbone in this path if that part took no time. Usage::

    python -m tools.analysis.ort_profile CONFIG [--batch 1] [--threads 1] [--runs 30]
"""
import argparse
import json
import os
import os.path as osp
import re
import tempfile
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from mmengine.config import Config
from mmpose.apis import init_model

from poseur_mm.deploy import create_session, export_onnx
from poseur_mm.deploy.export import INPUT_NAME
from tools.analysis.measure import machine_summary

KERNEL_SUFFIX = '_kernel_time'
# (part, pattern on the node name), first match wins. The EMSDA sampling is the
# cross-attention's Gather and its first MatMul, which the exporter names without a number
# (the per-head projection is MatMul_1)
PARTS = (
    ('backbone', r'/backbone/'),
    ('neck', r'/neck/'),
    ('EMSDA sampling', r'/cross_attn/(Gather(_\d+)?|MatMul)$'),
    ('cross-attention, other', r'/cross_attn/'),
    ('self-attention', r'/self_attn/'),
    ('FFN', r'/ffn/'),
    ('decoder, other', r'query_decoder/'),
)
REST = 'other'


def part_of(node: str) -> str:
    """The part of the model a profiled node belongs to (see ``PARTS``)."""
    for part, pattern in PARTS:
        if re.search(pattern, node):
            return part
    return REST


def split_profile(events: Sequence[dict]) -> pd.DataFrame:
    """Per-part kernel time of a profile, per run, the first run left out (it allocates).

    Args:
        events (Sequence[dict]): onnxruntime's profile (the JSON list it writes) of at
            least two runs.

    Returns:
        pd.DataFrame: one row per part in ``PARTS`` order, then ``other``: ``part``,
        ``nodes`` and ``ms`` per run, and ``pct_of_backbone``.
    """
    runs = sorted((e['ts'], e['ts'] + e['dur']) for e in events
                  if e.get('cat') == 'Session' and e['name'] == 'model_run')
    if len(runs) < 2:
        raise ValueError(f'the profile holds {len(runs)} run(s); profile at least two (the '
                         'first one, which allocates, is left out)')
    first_run_end = runs[0][1]
    rows = []
    for event in events:
        if (event.get('cat') != 'Node' or not event['name'].endswith(KERNEL_SUFFIX)
                or event['ts'] < first_run_end):
            continue
        rows.append(dict(part=part_of(event['name'][:-len(KERNEL_SUFFIX)]),
                         ms=event['dur'] / 1000))
    order = [part for part, _ in PARTS] + [REST]
    frame = pd.DataFrame(rows, columns=['part', 'ms']).groupby('part')['ms'].agg(['count', 'sum'])
    frame = frame.reindex(order, fill_value=0).reset_index()
    frame = frame.rename(columns={'index': 'part', 'count': 'nodes', 'sum': 'ms'})
    frame['nodes'] //= len(runs) - 1
    frame['ms'] /= len(runs) - 1
    backbone = frame.loc[frame['part'] == 'backbone', 'ms'].item()
    if not backbone:
        raise ValueError('no node of the profile is named /backbone/: profile a graph of '
                         'poseur_mm.deploy.export_onnx')
    frame['pct_of_backbone'] = 100 * frame['ms'] / backbone
    return frame


def profile(config: str, checkpoint: Optional[str], batch: int, threads: int, runs: int,
            flip_test: bool, work_dir: str) -> pd.DataFrame:
    """Export ``config``'s graph into ``work_dir``, profile one run on random crops and
    ``runs`` more, and split the profile with :func:`split_profile`."""
    model = init_model(Config.fromfile(config), checkpoint, device='cpu')
    onnx_file = osp.join(work_dir, 'poseur.onnx')
    export_onnx(model, onnx_file, flip_test=flip_test)
    width, height = model.head.decoder.input_size
    crops = np.random.default_rng(0).uniform(0, 255, (batch, 3, height, width))
    feed = {INPUT_NAME: crops.astype(np.float32)}
    session = create_session(onnx_file, threads, batch,
                             profile_prefix=osp.join(work_dir, 'profile'))
    for _ in range(runs + 1):
        session.run(None, feed)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    return split_profile(events)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='a top-down Poseur config')
    parser.add_argument('--checkpoint', help='weights (the costs do not depend on them)')
    parser.add_argument('--batch', type=int, default=1, help='crops per run (default 1)')
    parser.add_argument('--threads', type=int, default=1, help='intra-op threads (default 1)')
    parser.add_argument('--runs', type=int, default=30,
                        help='profiled runs after a first untimed one (default 30)')
    parser.add_argument('--flip-test', action='store_true',
                        help='profile the flip-test graph (default: one pass)')
    parser.add_argument('--work-dir', help='keep the graph and the raw profile here '
                        '(default: a temporary folder)')
    args = parser.parse_args(argv)
    for name in ('batch', 'threads', 'runs'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be at least 1, got {getattr(args, name)}')
    return args


def main(argv: Optional[List[str]] = None) -> pd.DataFrame:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.work_dir or tmp
        os.makedirs(work_dir, exist_ok=True)
        frame = profile(args.config, args.checkpoint, args.batch, args.threads, args.runs,
                        args.flip_test, work_dir)
    print(f'{osp.basename(args.config)}: batch {args.batch}, {args.threads} thread(s), '
          f'{"flip test" if args.flip_test else "one pass"}, {args.runs} runs; '
          f'{machine_summary(torch.device("cpu"))}, load (1 min) {os.getloadavg()[0]:.1f}')
    print(frame.to_markdown(index=False, floatfmt='.2f'))
    head_and_neck = frame[frame['part'] != 'backbone'][['ms', 'pct_of_backbone']].sum()
    print(f'head and neck: {head_and_neck["ms"]:.2f} ms, {head_and_neck["pct_of_backbone"]:+.1f} % '
          'over the backbone nodes')
    return frame


if __name__ == '__main__':
    main()
