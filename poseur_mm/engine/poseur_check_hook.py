"""Check a Poseur model against its neck and datasets before the first iteration."""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS

from ..models.heads.poseur_head import PoseurHead


@HOOKS.register_module()
class PoseurCheckHook(Hook):
    """Fail when the runner starts, not at the first batch, on mistakes a config can make:

    - the neck's outputs do not match the head (``num_feature_levels`` maps of
      ``embed_dims`` channels), found by running backbone and neck once on a blank crop of
      the codec's ``input_size`` (no gradients, eval mode, so no statistic changes);
    - a dataset's ``num_keypoints`` differs from the head's ``num_joints``;
    - ``test_cfg.flip_test`` is on but a validation or test dataset has no ``flip_indices``.

    Each error is the head's ValueError, naming the fix. Add it with
    ``custom_hooks = [dict(type='PoseurCheckHook')]``; the Poseur configs do.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        """Check the neck's outputs against the head."""
        model = self._model(runner)
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
