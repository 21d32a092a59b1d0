"""onnxruntime and eager PyTorch latency of pose models against their bare backbone.

For every config (default: Poseur-R50, SimpleBaseline-R50 and RLE-R50 at 256x192) and the
bare backbone of the first one, both paths run the same function on the same crops:

- Poseur: :class:`poseur_mm.deploy.PoseurDeployModel` (normalisation, network, decoding),
  one pass and, as a separate row, with flip test; onnxruntime runs the graph of
  :func:`poseur_mm.deploy.export.export_onnx`;
- the other models: the network (``mode='tensor'``), exported as it is;
- the backbone: the backbone module alone.

All rows of one (threads, batch) setting run round-robin in one process (so load from other
jobs hits them alike), eager with ``torch.set_num_threads(threads)``, onnxruntime with as
many intra-op threads and the batch fixed per session
(:func:`poseur_mm.deploy.export.create_session`). Each row gives the median wall time and
the median CPU time of the process (with one thread, the latency without the time other
jobs took from this process), and both over the bare backbone of the same path. Weights
stay at their construction-time values: costs do not depend on them.

Example::

    python tools/analysis/ort_benchmark.py --threads 1 2 --batches 1 32 --out-dir work_dirs/ort
"""
import argparse
import os
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import onnxruntime as ort
import pandas as pd
import torch
from mmengine.config import Config
from mmpose.apis import init_model
from torch import nn

from poseur_mm.deploy.export import (BATCH_AXIS, DEFAULT_OPSET, INPUT_NAME, PoseurDeployModel,
                                     create_session, export_onnx)
from poseur_mm.models.heads import PoseurHead

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIGS = tuple(
    osp.join(REPO_ROOT, 'configs/body_2d_keypoint', path) for path in (
        'poseur/coco/td-reg_res50_poseur-8xb32-325e_coco-256x192.py',
        'baselines/coco/td-hm_res50_8xb32-325e_coco-256x192.py',
        'baselines/coco/td-reg_res50_rle-8xb32-325e_coco-256x192.py',
    ))
BACKBONE = 'backbone'
PATHS = ('onnxruntime', 'eager')


class NetworkForward(nn.Module):
    """The network of a pose estimator (backbone, neck, head) on a crop batch."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, crops: torch.Tensor):
        return self.model(crops, None, mode='tensor')


def build_rows(configs: Sequence[str]) -> Dict[str, nn.Module]:
    """Row name -> eval-mode module, in order: each model (Poseur one pass and with flip
    test), then the first config's bare backbone.

    Returns:
        dict: row name -> module called on crops (B, 3, H, W).
    """
    modules = {}
    for path in configs:
        model = init_model(Config.fromfile(path), None, device='cpu')
        name = osp.splitext(osp.basename(path))[0]
        if isinstance(model.head, PoseurHead):
            modules[f'{name} (one pass)'] = PoseurDeployModel(model, flip_test=False)
            modules[f'{name} (flip test)'] = PoseurDeployModel(model, flip_test=True)
        else:
            modules[name] = NetworkForward(model)
        modules.setdefault(BACKBONE, model.backbone)
    for module in modules.values():
        module.eval()  # MMPose's ResNet.train returns None: do not chain
    modules[BACKBONE] = modules.pop(BACKBONE)  # last
    return modules


def export_rows(modules: Dict[str, nn.Module], input_size: Sequence[int],
                out_dir: str) -> Dict[str, str]:
    """Export every row to ``out_dir``: Poseur rows with :func:`export_onnx`, the others
    with the same exporter settings (default opset, dynamic batch).

    Returns:
        dict: row name -> ``.onnx`` path.
    """
    os.makedirs(out_dir, exist_ok=True)
    width, height = input_size
    files = {}
    for index, (name, module) in enumerate(modules.items()):
        files[name] = osp.join(out_dir, f'row{index}.onnx')
        if isinstance(module, PoseurDeployModel):
            export_onnx(module.model, files[name], flip_test=module.flip_test)
            continue
        with torch.no_grad():
            torch.onnx.export(
                module, (torch.zeros(2, 3, height, width), ),
                files[name],
                dynamo=False,
                opset_version=DEFAULT_OPSET,
                input_names=[INPUT_NAME],
                dynamic_axes={INPUT_NAME: {
                    0: BATCH_AXIS
                }})
    return files


def time_round_robin(fns: Dict[str, Callable[[], object]], warmup: int,
                     repeats: int) -> Dict[str, Dict[str, float]]:
    """Median wall and process-CPU milliseconds of every function, called round-robin."""
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for round_index in range(warmup + repeats):
        for name, fn in fns.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if round_index >= warmup:
                wall[name].append((time.perf_counter() - start_wall) * 1e3)
                cpu[name].append((time.process_time() - start_cpu) * 1e3)
    return {
        name: dict(ms=statistics.median(wall[name]), cpu_ms=statistics.median(cpu[name]))
        for name in fns
    }


def measure(configs: Sequence[str] = DEFAULT_CONFIGS,
            threads: Sequence[int] = (1, 2),
            batches: Sequence[int] = (1, 32),
            repeats: Optional[Dict[int, int]] = None,
            warmup: int = 2,
            out_dir: str = 'work_dirs/ort_benchmark') -> List[dict]:
    """Time every row in both paths for every (threads, batch) setting.

    Args:
        configs (Sequence[str]): model configs; all must share one input size, and the
            first one's backbone is the bare-backbone row.
        threads (Sequence[int]): intra-op thread counts, eager and onnxruntime alike.
        batches (Sequence[int]): batch sizes.
        repeats (dict, optional): batch size -> timed rounds. Defaults to 20 rounds at
            batch 1 and 5 otherwise.
        warmup (int): untimed rounds first. Defaults to 2.
        out_dir (str): where the graphs are written.

    Returns:
        list[dict]: one row per (model, path, threads, batch): ``ms`` and ``cpu_ms``
        (medians per batch), ``ms_per_image``, ``vs_backbone_pct`` and
        ``cpu_vs_backbone_pct`` (over the bare backbone in the same path and setting),
        ``load_1min`` (the 1-minute load average when the setting started) and
        ``repeats``.
    """
    sizes = {tuple(Config.fromfile(path).codec['input_size']) for path in configs}
    if len(sizes) != 1:
        raise ValueError(f'the configs have different input sizes {sorted(sizes)}; '
                         'compare models of one input size per run')
    (input_size, ) = sizes
    modules = build_rows(configs)
    files = export_rows(modules, input_size, out_dir)
    width, height = input_size
    rows = []
    for num_threads in threads:
        torch.set_num_threads(num_threads)
        for batch in batches:
            crops = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
            crops = crops * 255
            sessions = {name: create_session(f, num_threads, batch) for name, f in files.items()}
            feed = {INPUT_NAME: crops.numpy()}
            fns = {}
            for name in modules:
                fns[(name, 'onnxruntime')] = (lambda s=sessions[name]: s.run(None, feed))
                fns[(name, 'eager')] = (lambda m=modules[name]: m(crops))
            load = os.getloadavg()[0]
            rounds = (repeats or {}).get(batch, 20 if batch == 1 else 5)
            with torch.no_grad():
                times = time_round_robin(fns, warmup, rounds)
            for (name, path), result in times.items():
                base = times[(BACKBONE, path)]
                rows.append(
                    dict(
                        model=name,
                        path=path,
                        threads=num_threads,
                        batch=batch,
                        ms=result['ms'],
                        cpu_ms=result['cpu_ms'],
                        ms_per_image=result['ms'] / batch,
                        vs_backbone_pct=100 * (result['ms'] / base['ms'] - 1),
                        cpu_vs_backbone_pct=100 * (result['cpu_ms'] / base['cpu_ms'] - 1),
                        load_1min=load,
                        repeats=rounds))
    return rows


def markdown(rows: List[dict]) -> str:
    """The rows as a markdown table, sorted by setting, path and model."""
    frame = pd.DataFrame(rows).sort_values(['threads', 'batch', 'path'], kind='stable')
    frame = frame[[
        'threads', 'batch', 'path', 'model', 'ms', 'ms_per_image', 'vs_backbone_pct', 'cpu_ms',
        'cpu_vs_backbone_pct', 'load_1min'
    ]]
    return frame.to_markdown(index=False, floatfmt='.1f')


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--configs', nargs='+', default=list(DEFAULT_CONFIGS))
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 32])
    parser.add_argument(
        '--repeats',
        type=int,
        nargs=2,
        default=[20, 5],
        metavar=('BATCH1', 'OTHER'),
        help='timed rounds at batch 1 and at the other batch sizes (default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--out-dir', default='work_dirs/ort_benchmark')
    args = parser.parse_args(argv)
    repeats = {batch: args.repeats[0] if batch == 1 else args.repeats[1] for batch in args.batches}
    rows = measure(args.configs, args.threads, args.batches, repeats, args.warmup, args.out_dir)
    table = markdown(rows)
    print(table)
    pd.DataFrame(rows).to_csv(osp.join(args.out_dir, 'ort_benchmark.csv'), index=False)
    with open(osp.join(args.out_dir, 'ort_benchmark.md'), 'w') as f:
        f.write(f'{os.cpu_count()} CPUs, torch {torch.__version__}, onnxruntime '
                f'{ort.__version__}\n\n{table}\n')


if __name__ == '__main__':
    main()
