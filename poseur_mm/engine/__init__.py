from .autocast_optim_wrapper import BF16AutocastOptimWrapper
from .cpu_distributed import DeviceAwareDistributedDataParallel, init_gloo_process_group
from .nonfinite_loss_hook import NonFiniteLossHook

__all__ = [
    'BF16AutocastOptimWrapper', 'DeviceAwareDistributedDataParallel', 'NonFiniteLossHook',
    'init_gloo_process_group'
]
