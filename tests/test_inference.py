"""MMPose's inference entry points run a Poseur config and checkpoint offline (docs/deploy.md)."""
import json
import os.path as osp
import runpy
import sys

import cv2
import mmpose
import numpy as np
import pytest
from mmpose.apis import MMPoseInferencer, inference_topdown
from mmpose.datasets import CocoDataset
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.structures import merge_data_samples

from poseur_mm.apis import PoseurInferencer
from poseur_tiny_checkpoint import CONFIG, annotated_boxes
from tiny_model import COCO_ROOT

IMAGE = osp.join(COCO_ROOT, '000000197388.jpg')  # five annotated people
NUM_JOINTS = 17
# GetBBoxCenterScale's default padding: the crop is the box enlarged 1.25 times.
BOX_PADDING = 1.25


def assert_inside(keypoints: np.ndarray, x1: float, y1: float, x2: float, y2: float):
    assert np.isfinite(keypoints).all()
    assert (keypoints[..., 0] >= x1).all() and (keypoints[..., 0] <= x2).all(), keypoints
    assert (keypoints[..., 1] >= y1).all() and (keypoints[..., 1] <= y2).all(), keypoints


@pytest.fixture(scope='module')
def inferencer(checkpoint):
    return MMPoseInferencer(
        pose2d=CONFIG, pose2d_weights=checkpoint, det_model='whole_image', device='cpu')


def test_init_model_takes_the_dataset_meta_from_the_config(model):
    # the test checkpoint has no meta: MMPose falls back to the config's dataset
    expected = parse_pose_metainfo(CocoDataset.METAINFO)
    meta = model.dataset_meta
    assert meta['dataset_name'] == 'coco'
    assert meta['num_keypoints'] == NUM_JOINTS
    assert meta['flip_indices'] == expected['flip_indices']
    assert meta['skeleton_links'] == expected['skeleton_links']
    np.testing.assert_array_equal(meta['sigmas'], expected['sigmas'])


def test_inference_topdown_with_given_boxes(model):
    boxes = annotated_boxes(IMAGE)
    results = inference_topdown(model, IMAGE, boxes)  # bbox_format 'xyxy'
    assert len(results) == len(boxes)
    for result, box in zip(results, boxes):
        pred = result.pred_instances
        assert pred.keypoints.shape == (1, NUM_JOINTS, 2)
        assert pred.keypoint_scores.shape == (1, NUM_JOINTS)
        assert ((pred.keypoint_scores >= 0) & (pred.keypoint_scores <= 1)).all()
        # each keypoint's Laplace scale per axis, in image pixels: positive and finite
        assert pred.keypoint_sigmas.shape == (1, NUM_JOINTS, 2)
        assert (np.isfinite(pred.keypoint_sigmas) & (pred.keypoint_sigmas > 0)).all()
        np.testing.assert_allclose(pred.bboxes[0], box)
        # image pixels, inside the crop of this box (its aspect-corrected, padded box)
        meta = result.metainfo
        half = meta['input_scale'] / 2
        assert (half * 2 >= (box[2:] - box[:2]) * BOX_PADDING - 1e-3).all()
        assert_inside(pred.keypoints, *(meta['input_center'] - half),
                      *(meta['input_center'] + half))


def test_merged_predictions_keep_every_persons_sigmas(model):
    boxes = annotated_boxes(IMAGE)
    merged = merge_data_samples(inference_topdown(model, IMAGE, boxes))
    assert merged.pred_instances.keypoint_sigmas.shape == (len(boxes), NUM_JOINTS, 2)


def test_inferencer_on_the_whole_image_writes_picture_and_predictions(inferencer, tmp_path):
    results = list(
        inferencer(IMAGE, vis_out_dir=str(tmp_path / 'vis'), pred_out_dir=str(tmp_path / 'pred')))
    assert len(results) == 1
    instances = results[0]['predictions'][0]
    assert len(instances) == 1
    height, width = cv2.imread(IMAGE).shape[:2]
    assert instances[0]['bbox'][0] == [0, 0, width, height]
    keypoints = np.array(instances[0]['keypoints'])
    assert keypoints.shape == (NUM_JOINTS, 2)
    assert len(instances[0]['keypoint_scores']) == NUM_JOINTS
    assert_inside(keypoints, 0, 0, width, height)

    picture = cv2.imread(str(tmp_path / 'vis' / osp.basename(IMAGE)))
    assert picture.shape == (height, width, 3)
    with open(tmp_path / 'pred' / osp.basename(IMAGE).replace('.jpg', '.json')) as f:
        saved = json.load(f)
    np.testing.assert_allclose(saved[0]['keypoints'], keypoints, atol=1e-3)


def test_poseur_inferencer_returns_and_writes_keypoint_sigmas(checkpoint, tmp_path):
    """MMPose's split_instances drops the sigmas; PoseurInferencer keeps them in the returned
    and in the written predictions."""
    inferencer = PoseurInferencer(model=CONFIG, weights=checkpoint, det_model='whole_image',
                                  device='cpu')
    result = next(inferencer(IMAGE, pred_out_dir=str(tmp_path)))
    with open(tmp_path / osp.basename(IMAGE).replace('.jpg', '.json')) as f:
        saved = json.load(f)
    for instance in (result['predictions'][0][0], saved[0]):
        sigmas = np.array(instance['keypoint_sigmas'])
        assert sigmas.shape == (NUM_JOINTS, 2)
        assert (np.isfinite(sigmas) & (sigmas > 0)).all()
        assert len(instance['keypoints']) == NUM_JOINTS  # MMPose's own fields stay
    assert saved[0]['keypoint_sigmas'] == result['predictions'][0][0]['keypoint_sigmas']


def test_inferencer_without_detector_ignores_given_boxes(inferencer):
    # MMPose 1.3.2's Pose2DInferencer drops ``bboxes`` when it has no detector (docs/deploy.md):
    # boxes go through inference_topdown instead
    box = annotated_boxes(IMAGE)[:1].tolist()
    result = next(inferencer(IMAGE, bboxes=[box]))
    height, width = cv2.imread(IMAGE).shape[:2]
    assert result['predictions'][0][0]['bbox'][0] == [0, 0, width, height]


def test_mmpose_image_demo_script(checkpoint, tmp_path, monkeypatch):
    # the script `mim run mmpose image_demo` would run (mim 0.3.9 cannot find it, see the docs)
    script = osp.join(osp.dirname(mmpose.__file__), '.mim', 'demo', 'image_demo.py')
    out_file = tmp_path / 'demo.jpg'
    monkeypatch.setattr(
        sys, 'argv',
        [script, IMAGE, CONFIG, checkpoint, '--out-file',
         str(out_file), '--device', 'cpu'])
    runpy.run_path(script, run_name='__main__')
    picture = cv2.imread(str(out_file))
    image = cv2.imread(IMAGE)
    assert picture.shape == image.shape
    # the whole-image box is drawn at least
    assert np.abs(picture.astype(int) - image).max() > 50
