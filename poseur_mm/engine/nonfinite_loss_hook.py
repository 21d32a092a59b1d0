"""Stop training on the first non-finite loss, before a checkpoint can save it."""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmpose.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` naming the iteration and the loss terms that are
    not finite.

    Its priority is above the checkpoint and logger hooks, so the run stops before the
    iteration's checkpoint is written. Add it with
    ``custom_hooks = [dict(type='NonFiniteLossHook')]``.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Check every ``loss*`` entry of the iteration's log variables."""
        bad = {
            name: float(value)
            for name, value in (outputs or {}).items()
            if name.startswith('loss') and not math.isfinite(float(value))
        }
        if bad:
            terms = ', '.join(f'{name}={value}' for name, value in sorted(bad.items()))
            raise NonFiniteLossError(
                f'non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}, '
                f'batch {batch_idx}): {terms}. Lower the learning rate, check the data of '
                'this batch, or enable gradient clipping (optim_wrapper.clip_grad).')
