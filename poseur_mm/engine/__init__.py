from .autocast_optim_wrapper import BF16AutocastOptimWrapper
from .nonfinite_loss_hook import NonFiniteLossHook

__all__ = ['BF16AutocastOptimWrapper', 'NonFiniteLossHook']
