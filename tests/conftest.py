"""Fixtures shared by the poseur_mm tests."""
import os.path as osp

import pytest

COCO_ROOT = osp.join(osp.dirname(__file__), '..', '..', 'shared', 'data', 'mmpose_testdata', 'coco')


@pytest.fixture(scope='session')
def coco_root() -> str:
    """MMPose's COCO test images and ``test_coco.json`` (real files, no download)."""
    if not osp.isfile(osp.join(COCO_ROOT, 'test_coco.json')):
        pytest.fail(f'MMPose test data missing at {COCO_ROOT}: copy mmpose/tests/data/coco there')
    return COCO_ROOT + '/'
