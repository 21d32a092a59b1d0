"""ONNX export of a top-down Poseur: Gather-based EMSDA, graph contents, the config's flip test
in the graph, onnxruntime parity."""
import glob
import os.path as osp

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from mmpose.apis import inference_topdown
from mmpose.registry import MODELS

import poseur_mm.ops.emsda as emsda_ops
from poseur_mm.deploy.export import (INPUT_NAME, OUTPUT_NAMES, PoseurDeployModel, create_session,
                                     crop_to_image, export_onnx, run_onnx)
from poseur_mm.ops import emsda_sampling
from poseur_mm.ops.emsda_onnx import emsda_sampling_gather
from poseur_tiny_checkpoint import CONFIG, annotated_boxes
from tiny_model import COCO_ROOT
from tools.deployment.pytorch2onnx import KEYPOINT_TOLERANCE, SCORE_TOLERANCE, main, make_crops


IMAGES = sorted(glob.glob(osp.join(COCO_ROOT, '*.jpg')))
INPUT_SIZE = (96, 128)  # (w, h) of the tiny config
NUM_DECODER_LAYERS = 2
NUM_JOINTS = 17


@pytest.fixture(scope='module')
def onnx_file(model, tmp_path_factory):
    """The default export: the tiny config's flip test is on, so the graph has it."""
    assert model.test_cfg['flip_test']
    path = str(tmp_path_factory.mktemp('onnx') / 'poseur_tiny.onnx')
    export_onnx(model, path)
    return path


def _session(path: str) -> ort.InferenceSession:
    return create_session(path, threads=2)


@pytest.fixture(scope='module')
def session(onnx_file):
    return _session(onnx_file)


@pytest.fixture(scope='module')
def session_no_flip(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 'poseur_tiny_no_flip.onnx')
    export_onnx(model, path, flip_test=False)
    return _session(path)


@pytest.mark.parametrize('dtype,atol', [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_gather_sampling_matches_embedding_bag(dtype, atol):
    torch.manual_seed(0)
    spatial_shapes = torch.tensor([[6, 5], [3, 3], [2, 1]])  # non-square, a 1-pixel-wide map
    num_value = int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum())
    value = torch.randn(2, num_value, 8, dtype=dtype)
    # points inside, on the border and outside the maps, where samples fade to zero
    locations = torch.rand(2, 5, 4, 3, 3, 2, dtype=dtype) * 1.6 - 0.3
    locations[0, 0, 0, :, 0] = 0.0
    locations[0, 0, 0, :, 1] = 1.0
    # far outside (clamped into the zero border) and exactly half a pixel outside
    locations[1, 0, 0] = torch.tensor([-7.0, 9.0], dtype=dtype)  # every point of a head
    locations[1, 0, 1, 0, 0] = torch.tensor([-0.5 / 5, 1 + 0.5 / 6], dtype=dtype)
    weights = torch.rand(2, 5, 4, 3, 3, dtype=dtype)
    expected = emsda_sampling(value, spatial_shapes, locations, weights)
    actual = emsda_sampling_gather(value, spatial_shapes, locations, weights)
    assert actual.shape == (2, 5, 4, 8)
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)
    assert expected[1, 0, 0].abs().max() == 0  # the far points read zeros only


def test_gather_sampling_needs_one_shape_per_level():
    value = torch.zeros(1, 5, 4)
    with pytest.raises(ValueError, match='describe 1 levels.*have 2'):
        emsda_sampling_gather(value, torch.tensor([[1, 5]]), torch.zeros(1, 1, 1, 2, 1, 2),
                              torch.zeros(1, 1, 1, 2, 1))


def test_export_path_of_the_model_matches_eager(model, monkeypatch):
    crops = torch.stack(make_crops(model, IMAGES)['inputs']).float()
    deploy = PoseurDeployModel(model)
    with torch.no_grad():
        keypoints, scores, sigmas = deploy(crops)

    calls = []

    def counted(*args):
        calls.append(1)
        return emsda_sampling_gather(*args)

    # what the exporter traces: EMSDAttention switches to the Gather sampling
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    monkeypatch.setattr(emsda_ops, 'emsda_sampling_gather', counted)
    with torch.no_grad():
        keypoints_grid, scores_grid, sigmas_grid = deploy(crops)
    assert len(calls) == 2 * NUM_DECODER_LAYERS  # the plain and the flipped pass
    assert keypoints.shape == (len(IMAGES), NUM_JOINTS, 2)
    assert scores.shape == (len(IMAGES), NUM_JOINTS)
    torch.testing.assert_close(keypoints_grid, keypoints, rtol=0, atol=1e-3)
    torch.testing.assert_close(scores_grid, scores, rtol=0, atol=1e-5)
    torch.testing.assert_close(sigmas_grid, sigmas, rtol=0, atol=1e-3)


def test_onnx_graph_has_standard_ops_and_a_dynamic_batch(onnx_file):
    graph = onnx.load(onnx_file)
    onnx.checker.check_model(graph)
    assert max(o.version for o in graph.opset_import if o.domain in ('', 'ai.onnx')) >= 16
    assert {node.domain for node in graph.graph.node} <= {'', 'ai.onnx'}
    op_types = {node.op_type for node in graph.graph.node}
    assert 'Gather' in op_types
    # no fallback, no embedding_bag loop, no per-level GridSample (slow in onnxruntime)
    assert not op_types & {'ATen', 'Loop', 'GridSample'}
    (crops, ) = graph.graph.input
    dims = [d.dim_param or d.dim_value for d in crops.type.tensor_type.shape.dim]
    assert crops.name == INPUT_NAME
    assert dims == ['batch', 3, INPUT_SIZE[1], INPUT_SIZE[0]]
    assert [o.name for o in graph.graph.output] == list(OUTPUT_NAMES)


@pytest.mark.parametrize('flip_test', [True, False], ids=['flip', 'no_flip'])
def test_onnxruntime_matches_mmpose_inference_on_real_images(model, session, session_no_flip,
                                                             monkeypatch, flip_test):
    """onnxruntime + crop_to_image against MMPose's inference_topdown with the same flip
    setting as the graph, on every annotated person of the COCO test images."""
    monkeypatch.setitem(model.test_cfg, 'flip_test', flip_test)
    graph = session if flip_test else session_no_flip
    num_people = 0
    for image in IMAGES:
        boxes = annotated_boxes(image)
        reference = inference_topdown(model, image, boxes)
        batch = make_crops(model, [image], [boxes])
        crops = torch.stack(batch['inputs']).float().numpy()
        keypoints, scores, sigmas = run_onnx(graph, crops)
        assert keypoints.shape == sigmas.shape == (len(boxes), NUM_JOINTS, 2)
        assert scores.shape == (len(boxes), NUM_JOINTS)
        for i, result in enumerate(reference):
            meta = result.metainfo
            in_image = crop_to_image(keypoints[i], meta['input_center'], meta['input_scale'],
                                     INPUT_SIZE)
            pixel = np.asarray(INPUT_SIZE) / meta['input_scale']  # crop px per image px
            error = np.abs(in_image - result.pred_instances.keypoints[0]) * pixel
            assert error.max() <= KEYPOINT_TOLERANCE
            np.testing.assert_allclose(
                scores[i], result.pred_instances.keypoint_scores[0], rtol=0, atol=SCORE_TOLERANCE)
            # sigmas: crop pixels in the graph, image pixels in MMPose's prediction
            sigma_error = np.abs(sigmas[i] - result.pred_instances.keypoint_sigmas[0] * pixel)
            assert sigma_error.max() <= KEYPOINT_TOLERANCE
        num_people += len(boxes)
    assert num_people == 12


def test_flip_graph_is_not_the_one_pass_graph(model, session, session_no_flip):
    """The flip test is really in the default graph: its keypoints are the fusion of two
    passes, not the plain pass."""
    crops = torch.stack(make_crops(model, IMAGES)['inputs']).float().numpy()
    fused = run_onnx(session, crops)[0]
    plain = run_onnx(session_no_flip, crops)[0]
    assert np.abs(fused - plain).max() > 0.1  # crop pixels


def test_an_empty_batch_is_refused_with_a_clear_error(model, session):
    width, height = INPUT_SIZE
    with pytest.raises(ValueError, match='batch of 0'):
        run_onnx(session, np.zeros((0, 3, height, width), np.float32))
    with pytest.raises(ValueError, match='batch of 0'), torch.no_grad():
        PoseurDeployModel(model)(torch.zeros(0, 3, height, width))


def test_batch_dimension_is_dynamic(model, session):
    crops = torch.stack(make_crops(model, IMAGES)['inputs']).float().numpy()
    keypoints, scores, _ = session.run(list(OUTPUT_NAMES), {INPUT_NAME: crops})
    for i in range(len(crops)):
        single, single_scores, _ = session.run(list(OUTPUT_NAMES), {INPUT_NAME: crops[i:i + 1]})
        np.testing.assert_allclose(single[0], keypoints[i], rtol=0, atol=1e-3)
        np.testing.assert_allclose(single_scores[0], scores[i], rtol=0, atol=1e-6)


def test_command_line_exports_and_checks(checkpoint, tmp_path, capsys):
    out = tmp_path / 'cli.onnx'
    main([CONFIG, checkpoint, str(out), '--check-images', IMAGES[0]])
    assert out.stat().st_size > 1e6
    printed = capsys.readouterr().out
    assert 'flip test on' in printed and 'onnxruntime vs PyTorch, 1 crop(s)' in printed
    main([CONFIG, checkpoint, str(out), '--no-flip-test', '--check-images', IMAGES[0]])
    printed = capsys.readouterr().out
    assert 'flip test off' in printed and 'onnxruntime vs PyTorch, 1 crop(s)' in printed


def test_export_refuses_an_opset_without_attention(model, tmp_path):
    with pytest.raises(ValueError, match='opset >= 14'):
        export_onnx(model, str(tmp_path / 'old.onnx'), opset=13)


def test_a_fixed_batch_session_matches_the_dynamic_one(model, onnx_file, session):
    crops = torch.stack(make_crops(model, IMAGES)['inputs']).float().numpy()[:1]
    fixed = create_session(onnx_file, threads=1, batch=1)
    for expected, actual in zip(run_onnx(session, crops), run_onnx(fixed, crops)):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)
    with pytest.raises(Exception, match='dimension'):  # onnxruntime's invalid-argument error
        run_onnx(fixed, np.concatenate((crops, crops)))


def test_export_refuses_a_non_poseur_head():
    model = MODELS.build(
        dict(
            type='TopdownPoseEstimator',
            backbone=dict(type='ResNet', depth=18),
            head=dict(
                type='RLEHead', in_channels=512, num_joints=NUM_JOINTS, loss=dict(type='RLELoss'))))
    with pytest.raises(TypeError, match='PoseurHead'):
        PoseurDeployModel(model)
