"""Quality of the synthetic COCO-format keypoint set (projects/synthetic_pose/synthetic_*.py).

Geometry and visibility are checked against masks drawn independently of the owner map the
generator uses; the files are read by MMPose's CocoDataset and scored by its CocoMetric,
whose AP on perturbed ground truth (not a trained model) is compared with pycocotools.
"""
import filecmp
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.dataset import Compose
from mmpose.datasets import CocoDataset
from mmpose.evaluation import CocoMetric
from mmpose.utils import register_all_modules
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from projects.synthetic_pose.synthetic_coco import (annotation_path, detection_path,
                                                    generate_dataset)
from projects.synthetic_pose.synthetic_scene import annotate_scene, render_scene, sample_scene

register_all_modules()
IMAGE_SIZE = (160, 120)
NUM_SCENES = 60


@pytest.fixture(scope='module')
def dataset_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic_pose'))
    generate_dataset(root, num_train=12, num_val=12, seed=3, image_size=IMAGE_SIZE)
    return root


@pytest.fixture(scope='module')
def scenes():
    """(scene, image, annotations) for NUM_SCENES random scenes."""
    result = []
    for index in range(NUM_SCENES):
        scene = sample_scene(np.random.default_rng([7, index]), IMAGE_SIZE)
        image, owner = render_scene(scene)
        result.append((scene, image, annotate_scene(scene, owner)))
    return result


def in_image(x, y):
    """Whether (x, y) lies within the image's pixel centres, and its (row, col)."""
    inside = 0 <= x <= IMAGE_SIZE[0] - 1 and 0 <= y <= IMAGE_SIZE[1] - 1
    return inside, (int(round(y)), int(round(x)))


def test_same_seed_same_files_other_seed_other_data(tmp_path, dataset_root):
    again = str(tmp_path / 'again')
    generate_dataset(again, num_train=12, num_val=12, seed=3, image_size=IMAGE_SIZE)
    for split in ('train', 'val'):
        assert filecmp.cmp(annotation_path(dataset_root, split), annotation_path(again, split),
                           shallow=False)
        assert filecmp.cmp(osp.join(dataset_root, split, '000005.jpg'),
                           osp.join(again, split, '000005.jpg'), shallow=False)
    assert filecmp.cmp(detection_path(dataset_root), detection_path(again), shallow=False)
    other = str(tmp_path / 'other')
    generate_dataset(other, num_train=2, num_val=1, seed=4, image_size=IMAGE_SIZE)
    with open(annotation_path(other, 'train')) as f, \
            open(annotation_path(dataset_root, 'train')) as g:
        assert json.load(f)['annotations'][0] != json.load(g)['annotations'][0]


def test_keypoints_inside_their_figure(scenes):
    for scene, _, annotations in scenes:
        assert len(annotations) == len(scene.figures)  # no figure placed fully outside here
        for figure, ann in zip(scene.figures, annotations):
            silhouette = figure.mask(IMAGE_SIZE[::-1])
            ys, xs = np.nonzero(silhouette)
            x, y, w, h = ann['bbox']
            assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
            assert ann['area'] == silhouette.sum()
            for (kx, ky, v), true_xy in zip(ann['keypoints'], figure.keypoints):
                inside, pixel = in_image(*true_xy)
                if not inside:
                    assert (kx, ky, v) == (0, 0, 0)
                    continue
                assert (kx, ky) == tuple(true_xy) and v > 0
                assert silhouette[pixel], 'a labelled keypoint off its figure'
                # pixels x..x+w-1 span [x - 0.5, x + w - 0.5] with pixel-centred coordinates
                assert x - 0.5 <= kx <= x + w - 0.5 and y - 0.5 <= ky <= y + h - 0.5
            assert ann['num_keypoints'] == np.count_nonzero(ann['keypoints'][:, 2])


def test_visibility_matches_occlusion(scenes):
    counts = np.zeros(3, int)
    for scene, image, annotations in scenes:
        shape = IMAGE_SIZE[::-1]
        for index, (figure, ann) in enumerate(zip(scene.figures, annotations)):
            # everything drawn after this figure: later figures and the clutter over them
            occluders = np.zeros(shape, bool)
            for later in scene.figures[index + 1:] + scene.clutter_over:
                occluders |= later.mask(shape)
            palette = set(figure.colors.values())
            for x, y, v in ann['keypoints']:
                counts[int(v)] += 1
                if v == 0:
                    continue
                _, pixel = in_image(x, y)
                assert v == (1 if occluders[pixel] else 2)
                # the image shows the figure's own colour exactly where it is visible
                assert (tuple(int(c) for c in image[pixel]) in palette) == (v == 2)
    # the scenes exercise all three flags, occlusion included
    assert counts[1] > 0.01 * counts.sum() and counts[0] > 0 and counts[2] > 0.7 * counts.sum()


def test_coco_dataset_reads_train_val_and_detections(dataset_root):
    with open(annotation_path(dataset_root, 'train')) as f:
        train = json.load(f)
    dataset = CocoDataset(data_root=dataset_root, ann_file='annotations/person_keypoints_train.json',
                          data_prefix=dict(img='train/'), data_mode='topdown', pipeline=[])
    labelled = [a for a in train['annotations'] if a['num_keypoints'] > 0]
    assert len(dataset) == len(labelled) and dataset.metainfo['num_keypoints'] == 17
    info = dataset.get_data_info(0)
    np.testing.assert_allclose(info['keypoints'][0],
                               np.reshape(labelled[0]['keypoints'], (17, 3))[:, :2])
    codec = dict(type='RegressionLabel', input_size=(48, 64))
    pipeline = Compose([dict(type='LoadImage'), dict(type='GetBBoxCenterScale'),
                        dict(type='TopdownAffine', input_size=codec['input_size']),
                        dict(type='GenerateTarget', encoder=codec), dict(type='PackPoseInputs')])
    packed = pipeline(info)
    assert tuple(packed['inputs'].shape) == (3, 64, 48)
    labels = packed['data_samples'].gt_instance_labels.keypoint_labels
    assert tuple(labels.shape) == (1, 17, 2)

    with open(detection_path(dataset_root)) as f:
        detections = json.load(f)
    val = CocoDataset(data_root=dataset_root, ann_file='annotations/person_keypoints_val.json',
                      bbox_file=detection_path(dataset_root), data_prefix=dict(img='val/'),
                      data_mode='topdown', test_mode=True, pipeline=[])
    assert len(val) == len(detections)
    scores = sorted(val.get_data_info(i)['bbox_score'][0] for i in range(len(val)))
    np.testing.assert_allclose(scores, sorted(d['score'] for d in detections), rtol=1e-6)


def metric_on(dataset_root, keypoints_of, scores_of, outfile_prefix=None) -> dict:
    """CocoMetric on val, predicting ``keypoints_of(ann)`` (17, 2) with per-keypoint
    ``scores_of(ann)`` (17,) for every labelled val figure (ground-truth boxes)."""
    dataset = CocoDataset(data_root=dataset_root, ann_file='annotations/person_keypoints_val.json',
                          data_prefix=dict(img='val/'), data_mode='topdown', test_mode=True,
                          pipeline=[])
    metric = CocoMetric(ann_file=annotation_path(dataset_root, 'val'),
                        outfile_prefix=outfile_prefix)
    metric.dataset_meta = dataset.metainfo
    samples = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        ann = info['raw_ann_info']
        samples.append(dict(
            id=info['id'], img_id=info['img_id'],
            pred_instances=dict(keypoints=keypoints_of(ann)[None],
                                keypoint_scores=scores_of(ann)[None]),
            gt_instances=dict(bbox_scores=info['bbox_score'])))
    metric.process([], samples)
    return metric.evaluate(len(samples))


def test_ground_truth_as_prediction_scores_ap_1(dataset_root):
    results = metric_on(dataset_root,
                        lambda ann: np.reshape(ann['keypoints'], (17, 3))[:, :2],
                        lambda ann: np.ones(17))
    assert results['coco/AP'] == pytest.approx(1.0)
    assert results['coco/AR'] == pytest.approx(1.0)


def test_coco_metric_agrees_with_pycocotools(dataset_root, tmp_path):
    rng = np.random.default_rng(0)

    def perturbed(ann):  # noise of 2-15 % of the figure's size, so AP is far from 0 and 1
        scale = np.sqrt(ann['area']) * rng.uniform(0.02, 0.15)
        return np.reshape(ann['keypoints'], (17, 3))[:, :2] + rng.normal(0, scale, (17, 2))

    prefix = str(tmp_path / 'perturbed')
    results = metric_on(dataset_root, perturbed, lambda ann: rng.uniform(0.1, 1.0, 17), prefix)
    assert 0.1 < results['coco/AP'] < 0.9

    # pycocotools on the files CocoMetric evaluated: ground truth and its (rescored,
    # OKS-NMS-filtered) predictions
    ground_truth = COCO(annotation_path(dataset_root, 'val'))
    evaluation = COCOeval(ground_truth, ground_truth.loadRes(f'{prefix}.keypoints.json'),
                          'keypoints')
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    names = ['AP', 'AP .5', 'AP .75', 'AP (M)', 'AP (L)', 'AR', 'AR .5', 'AR .75', 'AR (M)',
             'AR (L)']
    for name, value in zip(names, evaluation.stats):
        assert results[f'coco/{name}'] == pytest.approx(value, abs=1e-9), name
