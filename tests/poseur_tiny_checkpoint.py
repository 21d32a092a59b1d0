"""A briefly trained checkpoint of tests/data/poseur_tiny_inference.py and the annotated COCO test
people, shared by the inference and export tests."""
import json
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmpose.registry import DATASETS, MODELS
from mmpose.utils import register_all_modules

import poseur_mm  # noqa: F401
from tiny_model import COCO_ROOT

CONFIG = osp.join(osp.dirname(__file__), 'data', 'poseur_tiny_inference.py')
# Five small steps from the construction-time weights move the predictions from the crop's
# top-left corner to its middle, so they land inside the image.
TRAIN_STEPS = 5
BATCH_SIZE = 4
LEARNING_RATE = 1e-4


def train_tiny_checkpoint(out_file: str) -> list:
    """Train the tiny config for a few AdamW steps on COCO test people and save
    ``{'state_dict': ...}``.

    The checkpoint holds tensors only: MMEngine loads it with ``weights_only=True``, which
    refuses the numpy arrays of a ``dataset_meta``, so the metadata comes from the config.

    Returns:
        list[float]: the loss of every step.
    """
    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[i] for i in range(BATCH_SIZE)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    losses = []
    for _ in range(TRAIN_STEPS):
        data = model.data_preprocessor(batch, training=True)
        loss = sum(v for k, v in model.loss(**data).items() if k.startswith('loss'))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    torch.save({'state_dict': model.state_dict()}, out_file)
    return losses


def annotated_boxes(image_path: str) -> np.ndarray:
    """(x1, y1, x2, y2) of the people with keypoints in test_coco.json, shape (N, 4)."""
    with open(osp.join(COCO_ROOT, 'test_coco.json')) as f:
        coco = json.load(f)
    image_id = next(i['id'] for i in coco['images'] if i['file_name'] == osp.basename(image_path))
    boxes = [
        a['bbox'] for a in coco['annotations']
        if a['image_id'] == image_id and a['num_keypoints'] > 0
    ]
    boxes = np.array(boxes, dtype=np.float32)
    boxes[:, 2:] += boxes[:, :2]
    return boxes
