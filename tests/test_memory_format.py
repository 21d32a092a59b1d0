"""Channels-last models (the fast CPU layout, the benchmark's ``--channels-last``) compute what
the default layout computes: the head flattens feature maps of any strides."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmpose.apis import inference_topdown

from poseur_tiny_checkpoint import annotated_boxes
from tiny_model import COCO_ROOT, coco_batch, tiny_model


def test_channels_last_model_matches_contiguous_model():
    torch.manual_seed(0)
    model = tiny_model()
    model.init_weights()
    model.eval()  # no dropout, no noisy groups: both layouts see the same graph
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    data = model.data_preprocessor(coco_batch(), training=True)
    inputs, samples = data['inputs'], data['data_samples']
    inputs_cl = inputs.contiguous(memory_format=torch.channels_last)

    feats = channels_last.extract_feat(inputs_cl)
    # the layout really changed: otherwise this compares the model with itself
    assert feats[0].is_contiguous(memory_format=torch.channels_last)
    assert not feats[0].is_contiguous()
    torch.testing.assert_close(channels_last(inputs_cl, None, mode='tensor'),
                               model(inputs, None, mode='tensor'), rtol=1e-5, atol=1e-5)

    losses = [m.loss(x, samples) for m, x in ((model, inputs), (channels_last, inputs_cl))]
    for name in losses[0]:
        if name.startswith('loss'):
            assert float(losses[1][name]) == pytest.approx(float(losses[0][name]), rel=1e-4)
    sum(v for k, v in losses[0].items() if k.startswith('loss')).backward()
    sum(v for k, v in losses[1].items() if k.startswith('loss')).backward()
    grads = dict(channels_last.named_parameters())
    for name, param in model.named_parameters():
        if param.grad is not None:
            torch.testing.assert_close(grads[name].grad, param.grad, rtol=1e-3, atol=1e-5,
                                       msg=name)


def test_inference_topdown_with_a_channels_last_model(model):
    """The one-line CPU speed-up of docs/deploy.md: ``model.to(memory_format=...)`` on an
    ``init_model`` model; MMPose's pre-processing still hands it NCHW batches."""
    image = osp.join(COCO_ROOT, '000000197388.jpg')
    boxes = annotated_boxes(image)
    reference = inference_topdown(model, image, boxes)
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    layouts = []
    channels_last.neck.register_forward_hook(lambda module, args, out: layouts.append(
        out[0].is_contiguous(memory_format=torch.channels_last)))
    results = inference_topdown(channels_last, image, boxes)
    assert layouts and all(layouts)  # the convolutions turned the NCHW batches channels-last
    for result, expected in zip(results, reference):
        np.testing.assert_allclose(result.pred_instances.keypoints,
                                   expected.pred_instances.keypoints, atol=1e-3)
        np.testing.assert_allclose(result.pred_instances.keypoint_scores,
                                   expected.pred_instances.keypoint_scores, atol=1e-5)
