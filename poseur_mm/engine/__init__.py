from .nonfinite_loss_hook import NonFiniteLossHook
from .poseur_check_hook import PoseurCheckHook
from .rng_state_hook import RNGStateHook

__all__ = ['NonFiniteLossHook', 'PoseurCheckHook', 'RNGStateHook']
