"""bfloat16 autocast training on any device, including the CPU (can go when MMEngine's
``AmpOptimWrapper`` accepts the CPU)."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmpose.registry import OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class BF16AutocastOptimWrapper(OptimWrapper):
    """Run the forward pass and the loss under ``torch.autocast`` on the model's device.

    MMEngine's ``AmpOptimWrapper`` refuses the CPU; this wrapper covers bfloat16 there (and
    on GPUs), whose wide exponent needs no loss scaling. For float16 on CUDA use
    ``AmpOptimWrapper``, which scales the loss. Poseur's flow, loss, scores and reference
    chain run in float32 inside autocast regardless.

    Args:
        **kwargs: the arguments of ``OptimWrapper``.
    """

    @contextmanager
    def optim_context(self, model: nn.Module):
        device_type = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device_type, dtype=torch.bfloat16):
            yield
