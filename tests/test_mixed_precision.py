"""Mixed precision: the head (coarse regression, decoder, reference chain) and the loss run
in float32 under autocast, as the release's @force_fp32 transformer; backbone and neck do not."""
import math

import pytest
import torch
from mmengine.runner import Runner

from tiny_model import COCO_ROOT, coco_batch, tiny_model, tiny_model_cfg, train_pipeline


# float16 on the CPU stands in for CUDA's AmpOptimWrapper (which refuses the CPU): the same
# narrow range (max 65504) that would overflow exp, log-probabilities or the sine encodings
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=str)
def test_autocast_keeps_loss_and_coordinates_float32(dtype):
    torch.manual_seed(0)
    model = tiny_model()
    model.init_weights()
    model.eval()  # no dropout, no noisy groups: both passes see the same graph
    data = model.data_preprocessor(coco_batch(), training=True)
    samples = data['data_samples']

    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        reference = model.head.loss(feats, samples)
        with torch.autocast('cpu', dtype=dtype):
            feats_low = model.extract_feat(data['inputs'])
            assert feats_low[0].dtype == dtype  # autocast is really active
            outputs = model.head.forward_all(feats_low)
            losses = model.head.loss(feats_low, samples)

    assert outputs['layers'].coords[-1].dtype == torch.float32
    assert outputs['layers'].sigma_logits[-1].dtype == torch.float32
    for name, value in losses.items():
        if name.startswith('loss'):
            assert value.dtype == torch.float32, name
            assert math.isfinite(float(value)), name
            # same model and data: low-precision features move the loss only a little
            assert float(value) == pytest.approx(float(reference[name]), rel=0.1), name


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=str)
def test_head_runs_in_float32_under_autocast(dtype):
    """Given the backbone's output, the head's outputs under autocast equal the float32
    model's, and the decoder receives and returns float32 tensors."""
    torch.manual_seed(0)
    model = tiny_model()
    model.init_weights()
    model.eval()
    data = model.data_preprocessor(coco_batch(), training=False)
    calls = []
    model.head.query_decoder.register_forward_hook(
        lambda module, args, kwargs, out: calls.append((kwargs, out)), with_kwargs=True)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        reference = model.head.forward_all(feats)
        with torch.autocast('cpu', dtype=dtype):
            assert model.extract_feat(data['inputs'])[0].dtype == dtype  # autocast is active
            outputs = model.head.forward_all(feats)

    inputs, decoded = calls[-1]
    for name in ('query', 'query_pos', 'memory', 'reference_points'):
        assert inputs[name].dtype == torch.float32, name
    for key in ('coords', 'sigma_logits'):
        for value, expected in zip(getattr(decoded, key), getattr(reference['layers'], key)):
            assert value.dtype == torch.float32
            torch.testing.assert_close(value, expected, rtol=0, atol=1e-5)
    for key in ('coords', 'sigma_logits'):
        torch.testing.assert_close(outputs['coarse'][key], reference['coarse'][key],
                                   rtol=0, atol=1e-5)


def test_bf16_autocast_optim_wrapper_trains_with_finite_losses(tmp_path, monkeypatch):
    seen = []
    original = torch.nn.Module.__call__

    def spy(module, *args, **kwargs):
        if module.__class__.__name__ == 'ChannelMapper':
            seen.append(torch.get_autocast_dtype('cpu') if torch.is_autocast_enabled('cpu')
                        else None)
        return original(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, '__call__', spy)
    runner = Runner(
        model=tiny_model_cfg(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(type='CocoDataset', data_root=COCO_ROOT, data_mode='topdown',
                         ann_file='test_coco.json', data_prefix=dict(img=''),
                         pipeline=train_pipeline())),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(type='BF16AutocastOptimWrapper',
                           optimizer=dict(type='AdamW', lr=1e-4)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=100)),
        custom_hooks=[dict(type='NonFiniteLossHook')],
        default_scope='mmpose')
    runner.train()  # NonFiniteLossHook raises on the first non-finite term
    history = runner.message_hub.get_scalar('train/loss').data[0]
    iterations = len(runner.train_dataloader)
    assert iterations >= 5 and len(history) == iterations
    assert all(math.isfinite(v) for v in history)
    assert seen == [torch.bfloat16] * iterations  # every training forward ran under bf16 autocast
