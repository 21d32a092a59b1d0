from .autocast_optim_wrapper import BF16AutocastOptimWrapper
from .cpu_distributed import DeviceAwareDistributedDataParallel, init_gloo_process_group
from .nonfinite_loss_hook import NonFiniteLossHook
from .poseur_check_hook import PoseurCheckHook
from .rng_state_hook import RNGStateHook

__all__ = [
    'BF16AutocastOptimWrapper', 'DeviceAwareDistributedDataParallel', 'NonFiniteLossHook',
    'PoseurCheckHook', 'RNGStateHook', 'init_gloo_process_group'
]
