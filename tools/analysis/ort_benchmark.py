"""onnxruntime against eager PyTorch: latency of pose models over their bare backbone.

Part of :mod:`tools.analysis.benchmark` (skip it with ``--skip-onnxruntime``). For every
config and the bare backbone of the first one, both paths run the same function on the
same crops:

- Poseur: :class:`poseur_mm.deploy.PoseurDeployModel` (normalisation, network, decoding),
  one pass and, as a separate row, with flip test; onnxruntime runs the graph of
  :func:`poseur_mm.deploy.export.export_onnx`;
- the other models: the network (``mode='tensor'``), exported as it is;
- the backbone: the backbone module alone.

All rows of one (threads, batch) setting run round-robin in one process, eager with
``torch.set_num_threads(threads)``, onnxruntime with as many intra-op threads and the batch
fixed per session (:func:`poseur_mm.deploy.export.create_session`). Each row gives the
median wall time and the median CPU time of the process (with one thread, the latency
without the time other jobs took from it), and both over the bare backbone of the same
path. Weights stay at their construction-time values: costs do not depend on them.
"""
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.config import Config
from mmpose.apis import init_model
from torch import nn

from poseur_mm.deploy.export import (BATCH_AXIS, DEFAULT_OPSET, INPUT_NAME, PoseurDeployModel,
                                     create_session, export_onnx)
from poseur_mm.models.heads import PoseurHead
from tools.analysis.measure import TensorForward, time_interleaved

BACKBONE = 'backbone'
PATHS = ('onnxruntime', 'eager')
FIELDS = ('model', 'path', 'threads', 'batch', 'ms', 'ms_per_image', 'vs_backbone_pct',
          'cpu_ms', 'cpu_vs_backbone_pct', 'load_1min', 'repeats')
COLUMNS = (('threads', 'threads', '{}'), ('batch', 'batch', '{}'), ('path', 'path', '{}'),
           ('model', 'model', '{}'), ('ms', 'ms', '{:.1f}'),
           ('ms/img', 'ms_per_image', '{:.1f}'),
           ('over backbone', 'vs_backbone_pct', '{:+.0f}%'),
           ('CPU ms', 'cpu_ms', '{:.1f}'),
           ('CPU over backbone', 'cpu_vs_backbone_pct', '{:+.0f}%'),
           ('load (1 min)', 'load_1min', '{:.1f}'))


def build_rows(configs: Sequence[str], input_size: Tuple[int, int]) -> Dict[str, nn.Module]:
    """Row name -> eval-mode module on crops (B, 3, H, W): each model (Poseur one pass and
    with flip test), then the first config's bare backbone.

    Args:
        configs (Sequence[str]): model configs.
        input_size (tuple): (w, h) the Poseur rows decode for (the networks themselves
            take any size).
    """
    modules = {}
    for path in configs:
        model = init_model(Config.fromfile(path), None, device='cpu')
        name = osp.splitext(osp.basename(path))[0]
        if isinstance(model.head, PoseurHead):
            model.head.decoder.input_size = tuple(input_size)
            modules[f'{name} (one pass)'] = PoseurDeployModel(model, flip_test=False)
            modules[f'{name} (flip test)'] = PoseurDeployModel(model, flip_test=True)
        else:
            modules[name] = TensorForward(model)
        modules.setdefault(BACKBONE, model.backbone)
    for module in modules.values():
        module.eval()  # MMPose's ResNet.train returns None: do not chain
    modules[BACKBONE] = modules.pop(BACKBONE)  # last
    return modules


def export_rows(modules: Dict[str, nn.Module], input_size: Tuple[int, int],
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
        files[name] = osp.join(out_dir, f'ort_row{index}.onnx')
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


def measure(configs: Sequence[str], input_size: Tuple[int, int], threads: Sequence[int],
            batches: Sequence[int], repeats: Dict[int, int], warmup: int,
            out_dir: str) -> List[dict]:
    """Time every row in both paths for every (threads, batch) setting.

    Args:
        configs (Sequence[str]): model configs; the first one's backbone is the
            bare-backbone row.
        input_size (tuple): (w, h) of the crops, one for all models (the cost benchmark
            passes the size it resolved for its rows).
        threads (Sequence[int]): intra-op thread counts, eager and onnxruntime alike.
        batches (Sequence[int]): batch sizes.
        repeats (dict): batch size -> timed rounds.
        warmup (int): untimed rounds first.
        out_dir (str): where the graphs are written.

    Returns:
        list[dict]: one row per (model, path, threads, batch) with the keys of ``FIELDS``:
        ``ms`` and ``cpu_ms`` are medians per batch, the ``*_vs_backbone_pct`` over the bare
        backbone in the same path and setting, ``load_1min`` the 1-minute load average when
        the setting started.
    """
    modules = build_rows(configs, input_size)
    files = export_rows(modules, input_size, out_dir)
    width, height = input_size
    rows = []
    for num_threads in threads:
        torch.set_num_threads(num_threads)
        for batch in batches:
            crops = 255 * torch.rand(
                batch, 3, height, width, generator=torch.Generator().manual_seed(0))
            sessions = {name: create_session(f, num_threads, batch) for name, f in files.items()}
            feed = {INPUT_NAME: crops.numpy()}
            fns = {}
            for name in modules:
                fns[(name, 'onnxruntime')] = (lambda s=sessions[name]: s.run(None, feed))
                fns[(name, 'eager')] = (lambda m=modules[name]: m(crops))
            load = os.getloadavg()[0]
            with torch.no_grad():
                times = time_interleaved(fns, warmup, repeats[batch], torch.device('cpu'))
            for (name, path), timing in times.items():
                base = times[(BACKBONE, path)]
                rows.append(
                    dict(
                        model=name,
                        path=path,
                        threads=num_threads,
                        batch=batch,
                        ms=timing.ms,
                        ms_per_image=timing.ms / batch,
                        vs_backbone_pct=100 * (timing.ms / base.ms - 1),
                        cpu_ms=timing.cpu_ms,
                        cpu_vs_backbone_pct=100 * (timing.cpu_ms / base.cpu_ms - 1),
                        load_1min=load,
                        repeats=repeats[batch]))
    return rows
