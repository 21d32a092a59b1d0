"""Fixtures shared by the poseur_mm tests."""
import logging
import os.path as osp

import pytest
import torch
from mmengine.logging import MMLogger
from mmpose.apis import init_model

from poseur_tiny_checkpoint import CONFIG, train_tiny_checkpoint
from tiny_model import COCO_ROOT


@pytest.fixture(scope='session')
def coco_root() -> str:
    """MMPose's COCO test images and ``test_coco.json`` (real files, no download)."""
    if not osp.isfile(osp.join(COCO_ROOT, 'test_coco.json')):
        pytest.fail(f'test images missing at {COCO_ROOT}: restore tests/data/coco from git')
    return COCO_ROOT + '/'


@pytest.fixture(scope='module')
def quiet_single_thread():
    """Small ops on a shared CPU: extra threads cost more in contention than they gain.
    MMEngine's per-parameter init and optimizer logs are silenced."""
    threads, logger = torch.get_num_threads(), MMLogger.get_current_instance()
    level = logger.level
    torch.set_num_threads(1)
    logger.setLevel(logging.WARNING)
    yield
    torch.set_num_threads(threads)
    logger.setLevel(level)


@pytest.fixture(scope='session')
def checkpoint(tmp_path_factory) -> str:
    """A briefly trained checkpoint of tests/data/poseur_tiny_inference.py, trained once per
    session and shared by the inference, export and calibration tests (read-only)."""
    path = str(tmp_path_factory.mktemp('poseur_tiny') / 'tiny.pth')
    losses = train_tiny_checkpoint(path)
    if not all(map(torch.isfinite, torch.tensor(losses))):
        raise RuntimeError(f'training the tiny test model diverged: losses {losses}')
    return path


@pytest.fixture(scope='module')
def model(checkpoint):
    """MMPose's ``init_model`` of the tiny inference config and its checkpoint, on the CPU."""
    return init_model(CONFIG, checkpoint, device='cpu')
