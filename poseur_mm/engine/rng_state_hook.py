"""Save and restore the random number generators with each checkpoint."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Make ``--resume`` continue the random streams of the interrupted run.

    MMEngine re-seeds on resume, so augmentation, dropout and Poseur's noisy query groups
    would draw different numbers than an uninterrupted run. This hook stores the states of
    Python's, NumPy's and torch's (CPU and CUDA) generators in every checkpoint and restores
    them when one is loaded. The NumPy state is stored as plain lists and ints, so loading
    keeps ``weights_only=True``. Add it with ``custom_hooks = [dict(type='RNGStateHook')]``.
    """

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint['rng_state'] = dict(
            python=random.getstate(),
            numpy=(name, keys.tolist(), pos, has_gauss, cached),
            torch=torch.get_rng_state(),
            cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        if state is None:
            return
        random.setstate(state['python'])
        name, keys, pos, has_gauss, cached = state['numpy']
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state['torch'])
        if state['cuda'] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
