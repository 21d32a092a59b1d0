from .nonfinite_loss_hook import NonFiniteLossHook

__all__ = ['NonFiniteLossHook']
