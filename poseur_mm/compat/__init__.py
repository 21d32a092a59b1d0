"""Gaps in the pinned OpenMMLab and PyTorch versions that poseur_mm fills, one per module.

Each module says which upstream gap it fills and when it can go:

- :mod:`.versions`: the supported OpenMMLab versions, checked on import.
- :mod:`.checkpoint_globals`: ``torch.load(weights_only=True)`` allow-list for MMEngine's
  checkpoints, until MMEngine loads its own checkpoints with ``weights_only``.
- :mod:`.autocast_optim_wrapper`: bfloat16 autocast on the CPU, until MMEngine's
  ``AmpOptimWrapper`` accepts the CPU.
- :mod:`.cpu_distributed` (+ :mod:`.gloo_process_group`): DDP on CPU-only machines, until
  MMEngine's ``init_dist`` and runner stop assuming a GPU per process.
"""
from .versions import check_dependencies

check_dependencies()

from . import checkpoint_globals  # noqa: E402,F401  (allow-lists on import)
from .autocast_optim_wrapper import BF16AutocastOptimWrapper  # noqa: E402
from .cpu_distributed import (DeviceAwareDistributedDataParallel,  # noqa: E402
                              init_gloo_process_group)

__all__ = [
    'BF16AutocastOptimWrapper', 'DeviceAwareDistributedDataParallel', 'check_dependencies',
    'init_gloo_process_group'
]
