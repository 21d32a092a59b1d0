"""Check a Poseur model against its neck, datasets and resumed checkpoint before the first
iteration."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop, EpochBasedTrainLoop
from mmengine.runner.checkpoint import _load_checkpoint, find_latest_checkpoint
from mmpose.registry import HOOKS

from ..models.heads.poseur_head import PoseurHead


@HOOKS.register_module()
class PoseurCheckHook(Hook):
    """Fail when the runner starts, not at the first batch, on mistakes a config can make:

    - the neck's outputs do not match the head (``num_feature_levels`` maps of
      ``embed_dims`` channels), found by running backbone and neck once on a blank crop of
      the codec's ``input_size`` (no gradients, eval mode, so no statistic changes);
    - a dataset's ``num_keypoints`` differs from the head's ``num_joints``;
    - ``test_cfg.flip_test`` is on but a validation or test dataset has no ``flip_indices``;
    - ``resume`` names a checkpoint whose model state does not fit the config (other keys or
      shapes, e.g. another keypoint set), or that was saved at or past ``max_epochs`` (the
      run would train nothing). Checked before MMEngine loads it, so nothing has changed yet.

    Each error is the head's ValueError, naming the fix. Add it with
    ``custom_hooks = [dict(type='PoseurCheckHook')]``; the Poseur configs do.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        """Check the neck's outputs against the head, and a checkpoint to resume."""
        model = self._model(runner)
        self._check_resume(runner, model)
        if model.head.decoder is None:
            raise ValueError('PoseurHead has no decoder; set head.decoder to the codec '
                             "(dict(type='RegressionLabel', input_size=(w, h)))")
        input_w, input_h = model.head.decoder.input_size
        param = next(model.parameters())
        blank = torch.zeros(1, 3, input_h, input_w, device=param.device, dtype=param.dtype)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model.head.check_feats(model.extract_feat(blank))
        finally:
            model.train(was_training)

    def before_train(self, runner) -> None:
        self._check_dataset(runner, runner.train_dataloader, flip_test=False)

    def before_val(self, runner) -> None:
        self._check_dataset(runner, runner.val_dataloader, flip_test=True)

    def before_test(self, runner) -> None:
        self._check_dataset(runner, runner.test_dataloader, flip_test=True)

    @staticmethod
    def _resume_path(runner) -> Optional[str]:
        """The checkpoint ``Runner.load_or_resume`` will resume from, by its own rule
        (MMEngine offers no public accessor for the resume settings)."""
        if not runner._resume:
            return None
        return runner._load_from or find_latest_checkpoint(runner.work_dir)

    def _check_resume(self, runner, model) -> None:
        path = self._resume_path(runner)
        loop = runner._train_loop  # built by Runner.train() before before_run; not in test()
        if path is None or not isinstance(loop, BaseLoop):
            return
        checkpoint = _load_checkpoint(path, map_location='cpu')
        saved = checkpoint.get('state_dict', checkpoint)
        current = model.state_dict()
        differing = [key for key in current if key not in saved] + [
            key for key in saved if key not in current or saved[key].shape != current[key].shape]
        if differing:
            joints = 'keypoint_encoder.class_embed.weight'
            found = saved.get('head.' + joints)
            raise ValueError(
                f'cannot resume {path}: its model state does not fit this config; first '
                f'differing keys: {differing[:3]} ({len(differing)} in all). The checkpoint '
                f'has num_joints={None if found is None else found.shape[0]}, the config '
                f'{model.head.num_joints}. Resume with the checkpoint\'s own config, or '
                'fine-tune from it with load_from and resume=False')
        unit, total = (('epoch', loop.max_epochs) if isinstance(loop, EpochBasedTrainLoop)
                       else ('iter', loop.max_iters))
        done = checkpoint.get('meta', {}).get(unit)
        if done is not None and done >= total:
            raise ValueError(
                f'{path} was saved at {unit} {done} and this config trains {total} {unit}s: '
                f'resuming would train nothing. Raise train_cfg.max_{unit}s, or start a new '
                'run in another work_dir')

    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not isinstance(getattr(model, 'head', None), PoseurHead):
            raise TypeError('PoseurCheckHook checks models with a PoseurHead, got head '
                            f'{type(getattr(model, "head", None)).__name__}; remove the hook '
                            'from custom_hooks')
        return model

    def _check_dataset(self, runner, dataloader, flip_test: bool) -> None:
        model = self._model(runner)
        metainfo = getattr(dataloader.dataset, 'metainfo', None) or {}
        flip_test = flip_test and bool((model.test_cfg or {}).get('flip_test', False))
        model.head.check_dataset_meta(metainfo, flip_test=flip_test)
