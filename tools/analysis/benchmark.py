"""Cost table of whole pose models: parameters, FLOPs, latency, throughput, peak memory.

For every model config, and for each distinct backbone on its own, it measures:

- parameters: every parameter of the built model (what a checkpoint holds; Poseur's and
  RLE's normalising flows are training-only but counted);
- FLOPs at batch 1: mmengine's ``FlopAnalyzer`` (one multiply-add counts as one FLOP, the
  MMPose convention), with handles for the ops it does not know: the EMSDA sampling (its
  weighted gather of 4 bilinear corners per point, counted analytically), ``embedding_bag``
  and ``scaled_dot_product_attention``;
- latency at batch 1 and time per image at batch N (default 32), median of repeated
  forward passes after warm-up, all models interleaved round-robin so that load from other
  jobs hits them alike; torch threads fixed and printed;
- peak memory of one batch-N forward pass (see
  :func:`tools.analysis.measure.peak_memory_mib`).

Timed is the network (``mode='tensor'``: backbone, neck, head) in eval mode, without data
pre-processing or decoding. Each model is compared with the heatmap model of the same
backbone and input size in the run (its "paired baseline"), and with the bare backbone
(the head+neck cost). Writes ``cost_table.md``, ``cost_table.csv``, ``cost_table.png``;
unless ``--skip-onnxruntime``, ``onnxruntime.md``/``.csv``, the same models' latency in
onnxruntime and eager at batch 1 and N over the bare backbone
(:mod:`tools.analysis.ort_benchmark`); unless ``--skip-emsda``, the EMSDA micro-benchmark
(:mod:`tools.analysis.emsda_benchmark`);
with ``--accuracy-study``, the accuracy-vs-resolution study
(:mod:`projects.synthetic_pose.accuracy_study`).

Run ``python -m tools.analysis.benchmark --help`` from the repository root.
"""
import argparse
import copy
import math
import os.path as osp
import shlex
import sys
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import onnxruntime as ort
import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings
from torch import nn
from tqdm import tqdm

import poseur_mm  # noqa: F401  (registers the plugin's modules)
from poseur_mm.ops.emsda import _EMSDASamplingCPU
from projects.synthetic_pose import accuracy_study
from tools.analysis import emsda_benchmark, ort_benchmark
from tools.analysis.measure import (TensorForward, machine_summary, peak_memory_mib, set_threads,
                                    time_interleaved)
from tools.analysis.report import markdown_table, write_tables

# the checkout this script is in: the default configs are its configs/
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Poseur ResNet-50 and its two baselines (heatmap SimpleBaseline, RLE regression)
DEFAULT_CONFIGS = (
    'configs/body_2d_keypoint/poseur/coco/td-reg_res50_poseur-8xb32-325e_coco-256x192.py',
    'configs/body_2d_keypoint/baselines/coco/td-hm_res50_8xb32-325e_coco-256x192.py',
    'configs/body_2d_keypoint/baselines/coco/td-reg_res50_rle-8xb32-325e_coco-256x192.py',
)
QUICK_INPUT_SIZE = (48, 64)  # (w, h)
FIELDS = ('name', 'kind', 'input', 'memory_format', 'params_m', 'gflops', 'latency_ms', 'batch',
          'ms_per_image', 'images_per_s', 'peak_mib', 'baseline', 'params_vs_baseline',
          'gflops_vs_baseline', 'latency_vs_baseline', 'throughput_vs_baseline', 'backbone',
          'head_neck_gflops_pct', 'head_neck_latency_pct', 'head_neck_ms_per_image_pct')

# row keys compared with the paired heatmap model, and with the bare backbone
RATIOS = (('params_m', 'params_vs_baseline'), ('gflops', 'gflops_vs_baseline'),
          ('latency_ms', 'latency_vs_baseline'), ('images_per_s', 'throughput_vs_baseline'))
OVERHEADS = (('gflops', 'head_neck_gflops_pct'), ('latency_ms', 'head_neck_latency_pct'),
             ('ms_per_image', 'head_neck_ms_per_image_pct'))


def _emsda_flop_jit(inputs: list, outputs: list) -> int:
    """EMSDA sampling: C multiply-adds for each of the 4 corners of every point."""
    channels = get_shape(inputs[0])[-1]
    locations = get_shape(inputs[2])  # (B, Q, H, L, P, 2)
    return math.prod(locations[:-1]) * 4 * channels


def _embedding_bag_flop_jit(inputs: list, outputs: list) -> int:
    """Weighted ``embedding_bag``: one multiply-add per gathered element."""
    return math.prod(get_shape(inputs[1])) * get_shape(inputs[0])[-1]


def _sdpa_flop_jit(inputs: list, outputs: list) -> int:
    """``q @ k^T`` and ``attention @ v``, (..., Lq, d) x (..., Lk, d) x (..., Lk, dv)."""
    query, key, value = (get_shape(v) for v in inputs[:3])
    return math.prod(query[:-1]) * key[-2] * (query[-1] + value[-1])


FLOP_HANDLES = {
    f'prim::PythonOp.{_EMSDASamplingCPU.__name__}': _emsda_flop_jit,
    'aten::embedding_bag': _embedding_bag_flop_jit,
    'aten::scaled_dot_product_attention': _sdpa_flop_jit,
}


def count_flops(module: nn.Module, inputs: torch.Tensor) -> Tuple[int, Counter]:
    """FLOPs (multiply-adds) of ``module(inputs)`` and the ops the count skipped.

    Returns:
        tuple[int, Counter]: total FLOPs and op name -> occurrences of skipped ops
        (element-wise ops, which the MMPose convention does not count).
    """
    analyzer = FlopAnalyzer(module, (inputs, ))
    analyzer.set_op_handle(**FLOP_HANDLES)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    total = analyzer.total()
    return total, analyzer.unsupported_ops()


class Entry:
    """One row of the table: a model, or a bare backbone.

    Args:
        name (str): row name (config file name, or ``<backbone> backbone``).
        module (nn.Module): called on an image batch (N, 3, h, w).
        input_size (tuple): (w, h).
        backbone_key (str): identifies the backbone config, for pairing.
        head (str): head type, '' for a bare backbone.
    """

    def __init__(self, name: str, module: nn.Module, input_size: Tuple[int, int], backbone_key: str,
                 head: str):
        self.name = name
        self.module = module
        module.eval()  # some backbones' train() returns None, so do not chain
        self.input_size = tuple(input_size)
        self.backbone_key = backbone_key
        self.head = head

    @property
    def is_heatmap(self) -> bool:
        return 'Heatmap' in self.head


def _backbone_key(backbone: dict) -> str:
    # which stages are returned and how weights are initialised do not change the cost
    cfg = {k: v for k, v in backbone.items() if k not in ('init_cfg', 'out_indices')}
    return repr(sorted(cfg.items()))


def _backbone_name(backbone: dict) -> str:
    depth = backbone.get('depth')
    return f"{backbone['type']}-{depth}" if depth else backbone['type']


def _config_input_size(cfg: Config, path: str) -> Tuple[int, int]:
    codec = cfg.get('codec')
    if isinstance(codec, list):  # e.g. several codecs: the first one sets the crop
        codec = codec[0]
    if codec and 'input_size' in codec:
        return tuple(codec['input_size'])
    decoder = cfg.model.get('head', {}).get('decoder')
    if decoder and 'input_size' in decoder:
        return tuple(decoder['input_size'])
    raise ValueError(f'{path}: no codec input_size found; pass --input-size W H')


def load_entries(configs: Sequence[str],
                 input_size: Optional[Tuple[int, int]] = None) -> List[Entry]:
    """Build every config's model and one bare backbone per distinct (backbone, input).

    Weights stay at their random initialisation (no pretrained download): costs do not
    depend on them.

    Args:
        configs (Sequence[str]): MMPose model config paths.
        input_size (tuple, optional): (w, h) overriding every config's codec input size.

    Returns:
        list[Entry]: the models in the given order, then the backbones.
    """
    from mmpose.registry import MODELS
    models, backbones = [], {}
    for path in configs:
        if not osp.isfile(path):
            raise FileNotFoundError(f'config {path} not found; pass existing config paths')
        cfg = Config.fromfile(path)
        if cfg.get('custom_imports'):
            import_modules_from_strings(**cfg.custom_imports)
        init_default_scope(cfg.get('default_scope', 'mmpose'))
        size = tuple(input_size) if input_size else _config_input_size(cfg, path)
        backbone_cfg = copy.deepcopy(cfg.model.backbone.to_dict())
        backbone_cfg.pop('init_cfg', None)  # no pretrained download
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.backbone = backbone_cfg
        name = osp.splitext(osp.basename(path))[0]
        key = _backbone_key(backbone_cfg)
        models.append(
            Entry(name, TensorForward(MODELS.build(model_cfg)), size, key, cfg.model.head.type))
        if (key, size) not in backbones:
            label = f'{_backbone_name(backbone_cfg)} backbone'
            if any(e.name == label for e in backbones.values()):
                label = f'{label} ({name})'
            backbones[(key, size)] = Entry(label, MODELS.build(backbone_cfg), size, key, '')
    return models + list(backbones.values())


def measure(entries: List[Entry],
            batch: int,
            warmup: int,
            repeats: int,
            device: torch.device,
            progress: bool = True,
            channels_last: bool = False) -> Tuple[List[dict], Counter]:
    """Measure every entry and compare it with its paired baseline and its backbone.

    With ``channels_last``, the models' 4D weights and the images are converted to
    ``torch.channels_last``, the layout oneDNN's CPU convolutions run natively.

    Returns:
        tuple[list[dict], Counter]: rows with the keys of ``FIELDS`` and the ops the FLOP
        count skipped (all entries together).
    """
    gen = torch.Generator().manual_seed(0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    images = {}
    for entry in entries:
        w, h = entry.input_size
        for n in (1, batch):
            if (n, w, h) not in images:
                images[(n, w, h)] = torch.randn(n, 3, h, w, generator=gen).to(
                    device, memory_format=memory_format)
        entry.module.to(device, memory_format=memory_format)
    bar = tqdm(total=len(entries) + 3, desc='cost table', disable=not progress)
    rows, skipped = {}, Counter()
    for entry in entries:
        bar.set_postfix_str(f'FLOPs {entry.name}')
        w, h = entry.input_size
        with torch.no_grad():
            flops, unsupported = count_flops(entry.module, images[(1, w, h)])
        skipped.update(unsupported)
        rows[entry.name] = dict(
            name=entry.name,
            kind='backbone' if not entry.head else 'model',
            input=f'{h}x{w}',
            memory_format='channels_last' if channels_last else 'contiguous',
            params_m=sum(p.numel() for p in entry.module.parameters()) / 1e6,
            gflops=flops / 1e9,
            batch=batch)
        bar.update()

    def forward_fns(n: int) -> Dict[str, Callable[[], object]]:
        return {e.name: (lambda e=e: e.module(images[(n, *e.input_size)])) for e in entries}

    with torch.no_grad():
        bar.set_postfix_str('latency, batch 1')
        for name, timing in time_interleaved(forward_fns(1), warmup, repeats, device).items():
            rows[name]['latency_ms'] = timing.ms
        bar.update()
        bar.set_postfix_str(f'throughput, batch {batch}')
        for name, timing in time_interleaved(forward_fns(batch), warmup, repeats, device).items():
            rows[name]['ms_per_image'] = timing.ms / batch
            rows[name]['images_per_s'] = 1e3 * batch / timing.ms
        bar.update()
        # memory last: peak_memory_mib changes malloc's behaviour for the rest of the process
        bar.set_postfix_str(f'peak memory, batch {batch}')
        for name, fn in forward_fns(batch).items():
            rows[name]['peak_mib'] = peak_memory_mib(fn, device)
        bar.update()
    bar.close()
    add_comparisons(entries, rows)
    return [rows[e.name] for e in entries], skipped


def _partner(entries: List[Entry], entry: Entry, backbone: bool) -> Optional[Entry]:
    """The bare backbone, or the heatmap model, with ``entry``'s backbone and input."""
    for other in entries:
        same = (other.backbone_key, other.input_size) == (entry.backbone_key, entry.input_size)
        wanted = not other.head if backbone else other.head and other.is_heatmap
        if same and wanted:
            return other
    return None


def add_comparisons(entries: List[Entry], rows: Dict[str, dict]) -> None:
    """Ratios to the paired heatmap model and head+neck cost over the bare backbone."""
    for entry in entries:
        row = rows[entry.name]
        baseline = _partner(entries, entry, backbone=False) if entry.head else None
        backbone = _partner(entries, entry, backbone=True) if entry.head else None
        row['baseline'] = baseline.name if baseline else ''
        row['backbone'] = backbone.name if backbone else ''
        for key, ratio in RATIOS:
            row[ratio] = row[key] / rows[baseline.name][key] if baseline else math.nan
        for key, pct in OVERHEADS:
            base = rows[backbone.name][key] if backbone else math.nan
            row[pct] = 100 * (row[key] - base) / base


def table_columns(batch: int) -> Tuple[Tuple[str, str, str], ...]:
    """(title, row key, format) of the markdown table's columns; ratios are over the paired
    heatmap model ("hm"), head+neck costs over the bare backbone."""
    return (('model', 'name', '{}'), ('input', 'input', '{}'),
            ('params (M)', 'params_m', '{:.2f}'), ('GFLOPs', 'gflops', '{:.2f}'),
            ('latency b1 (ms)', 'latency_ms', '{:.1f}'),
            (f'ms/img b{batch}', 'ms_per_image', '{:.1f}'),
            (f'img/s b{batch}', 'images_per_s', '{:.2f}'),
            (f'peak MiB b{batch}', 'peak_mib', '{:.0f}'),
            ('params / hm', 'params_vs_baseline', '{:.2f}'),
            ('FLOPs / hm', 'gflops_vs_baseline', '{:.2f}'),
            ('latency / hm', 'latency_vs_baseline', '{:.2f}'),
            ('throughput / hm', 'throughput_vs_baseline', '{:.2f}'),
            ('head+neck FLOPs', 'head_neck_gflops_pct', '{:+.1f}%'),
            ('head+neck latency b1', 'head_neck_latency_pct', '{:+.1f}%'),
            (f'head+neck ms/img b{batch}', 'head_neck_ms_per_image_pct', '{:+.1f}%'))


def plot(rows: List[dict], path: str, batch: int) -> None:
    """Bar charts of GFLOPs, batch-1 latency and batch-N throughput per row."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = [r['name'] for r in rows]
    panels = (('gflops', 'GFLOPs (batch 1)'), ('latency_ms', 'latency, batch 1 (ms)'),
              ('images_per_s', f'throughput, batch {batch} (img/s)'))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 0.5 * len(rows) + 1.5), sharey=True)
    for ax, (key, title) in zip(axes, panels):
        ax.barh(
            range(len(rows)), [r[key] for r in rows],
            color=['tab:gray' if r['kind'] == 'backbone' else 'tab:blue' for r in rows])
        ax.set_title(title)
        ax.grid(axis='x', alpha=0.3)
    axes[0].set_yticks(range(len(rows)))
    axes[0].set_yticklabels(names, fontsize=7)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(rows: List[dict], out_dir: str, header: str, table: str,
                  batch: int) -> List[str]:
    """Write ``cost_table.md`` (``header`` and the markdown ``table``), ``.csv`` and ``.png``;
    returns their paths."""
    paths = write_tables(out_dir, 'cost_table', header, table, rows, FIELDS)
    paths.append(osp.join(out_dir, 'cost_table.png'))
    plot(rows, paths[-1], batch)
    return paths


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Cost table of pose models (params, FLOPs, latency, throughput, peak '
        'memory) against paired heatmap baselines and bare backbones, plus the EMSDA '
        'micro-benchmark.')
    parser.add_argument(
        'configs',
        nargs='*',
        help='model configs (default: Poseur, SimpleBaseline and RLE with '
        'ResNet-50 at 256x192 from configs/)')
    emsda_benchmark.add_arguments(parser)
    parser.add_argument(
        '--batch-size',
        type=int,
        default=None,
        help='batch of the throughput and memory runs (default 32, --quick 2)')
    parser.add_argument(
        '--input-size',
        type=int,
        nargs=2,
        metavar=('W', 'H'),
        default=None,
        help='override every config input size (--quick: 48 64)')
    parser.add_argument(
        '--out-dir',
        default='work_dirs/benchmark',
        help='where the tables and the plot go (default work_dirs/benchmark)')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='run every model and image in the channels-last layout (faster convolutions on '
        'CPUs; default: contiguous NCHW, as MMPose runs)')
    parser.add_argument('--skip-emsda', action='store_true', help='skip the EMSDA micro-benchmark')
    parser.add_argument(
        '--skip-onnxruntime',
        action='store_true',
        help='skip the onnxruntime-vs-eager latency table (tools.analysis.ort_benchmark)')
    parser.add_argument(
        '--accuracy-study',
        action='store_true',
        help='then train and evaluate Poseur, heatmap and RLE models at three input sizes on '
        'the synthetic set (projects.synthetic_pose.accuracy_study: hours on a CPU; --quick: '
        'minutes)')
    return parser.parse_args(argv)


def run(argv: Optional[Sequence[str]] = None) -> Dict[str, List[dict]]:
    """Run the benchmark with command-line arguments ``argv``.

    Returns:
        dict: ``models`` (cost-table rows, keys ``FIELDS``), ``onnxruntime`` (rows of
        :mod:`tools.analysis.ort_benchmark`, empty with ``--skip-onnxruntime``), ``emsda``
        (the micro-benchmark's rows, empty with ``--skip-emsda``) and, with
        ``--accuracy-study``, ``accuracy`` (the study's rows).
    """
    args = parse_args(argv)
    emsda_benchmark.resolve_defaults(args)
    batch = args.batch_size or (2 if args.quick else 32)
    input_size = args.input_size or (QUICK_INPUT_SIZE if args.quick else None)
    configs = args.configs or [osp.join(REPO, c) for c in DEFAULT_CONFIGS]
    set_threads(args.threads)
    device = torch.device(args.device)
    command = 'python -m tools.analysis.benchmark ' + shlex.join(sys.argv[1:] if argv is
                                                                 None else list(argv))
    layout = 'channels-last' if args.channels_last else 'contiguous (NCHW)'
    header = (f'Cost table on {machine_summary(device)}; {layout} layout; median of '
              f'{args.repeats} runs after {args.warmup} warm-up. Command: `{command}`')
    print(header)
    entries = load_entries(configs, input_size)
    sizes = {entry.input_size for entry in entries}
    if not args.skip_onnxruntime and len(sizes) != 1:
        raise ValueError(f'the configs have different input sizes {sorted(sizes)}; the '
                         'onnxruntime table compares models of one input size: pass '
                         '--input-size or --skip-onnxruntime')
    rows, skipped = measure(
        entries,
        batch,
        args.warmup,
        args.repeats,
        device,
        progress=not args.no_progress,
        channels_last=args.channels_last)
    if skipped:
        header += '\n\nOps the FLOP count skips: ' + ', '.join(sorted(skipped))
    table = markdown_table(rows, table_columns(batch))
    print(table)
    for path in write_outputs(rows, args.out_dir, header, table, batch):
        print(f'wrote {path}')
    results = dict(models=rows, emsda=[], onnxruntime=[])
    if not args.skip_onnxruntime:
        # batch 1 is short and noisier: 4x the rounds
        repeats = {batch: args.repeats, 1: 4 * args.repeats}
        (ort_size, ) = sizes
        ort_rows = ort_benchmark.measure(configs, ort_size, [torch.get_num_threads()], [1, batch],
                                         repeats, args.warmup, osp.join(args.out_dir, 'onnx'))
        ort_rows.sort(key=lambda r: (r['batch'], r['path']))  # stable: models keep their order
        ort_header = (f'onnxruntime and eager latency over the bare backbone on '
                      f'{machine_summary(device)}; onnxruntime {ort.__version__}, intra-op '
                      f'threads as torch, batch fixed per session. Command: `{command}`')
        table = markdown_table(ort_rows, ort_benchmark.COLUMNS)
        print(table)
        for path in write_tables(args.out_dir, 'onnxruntime', ort_header, table, ort_rows,
                                 ort_benchmark.FIELDS):
            print(f'wrote {path}')
        results['onnxruntime'] = ort_rows
    if not args.skip_emsda:
        emsda_args = [
            '--warmup',
            str(args.warmup), '--repeats',
            str(args.repeats), '--device', args.device, '--out-dir', args.out_dir
        ]
        emsda_args += ['--threads', str(torch.get_num_threads())]
        emsda_args += ['--quick'] if args.quick else []
        emsda_args += ['--no-progress'] if args.no_progress else []
        results['emsda'] = emsda_benchmark.run(emsda_args)
    if args.accuracy_study:
        study_args = ['--out-dir', args.out_dir, '--threads', str(torch.get_num_threads())]
        study_args += ['--quick'] if args.quick else []
        study_args += ['--no-progress'] if args.no_progress else []
        results['accuracy'] = accuracy_study.run(study_args)
    return results


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point."""
    run(argv)


if __name__ == '__main__':
    main()
