"""Write a synthetic COCO-format keypoint dataset that MMPose reads unchanged.

Layout under ``out_dir``::

    annotations/person_keypoints_{train,val}.json   COCO keypoint annotations
    {train,val}/000001.jpg ...                       images
    person_detection_results/detections_val.json    jittered val boxes with scores

Every image comes from its own generator seeded by (seed, split, image index), so a
dataset is fully determined by its arguments. Command line::

    python -m projects.synthetic_pose.synthetic_coco --out-dir data/synthetic_pose

from the repository root.
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmpose.datasets.datasets.utils import parse_pose_metainfo

from .synthetic_scene import annotate_scene, render_scene, sample_scene

SPLITS = ('train', 'val')
JPEG_QUALITY = 90
# Detection boxes: centre shifted by N(0, CENTER_JITTER * size) per axis, each side
# scaled by exp(N(0, SCALE_JITTER)); scores uniform in SCORE_RANGE.
CENTER_JITTER = 0.05
SCALE_JITTER = 0.1
SCORE_RANGE = (0.3, 1.0)


def person_category() -> dict:
    """COCO's 'person' category: keypoint names and skeleton from MMPose's COCO metainfo."""
    # a path under configs/_base_/datasets that MMPose finds in its installed package
    meta = parse_pose_metainfo(dict(from_file='configs/_base_/datasets/coco.py'))
    return dict(id=1, name='person', supercategory='person',
                keypoints=[meta['keypoint_id2name'][k] for k in range(meta['num_keypoints'])],
                # COCO files number keypoints from 1
                skeleton=[[start + 1, end + 1] for start, end in meta['skeleton_links']])


def annotation_path(out_dir: str, split: str) -> str:
    return osp.join(out_dir, 'annotations', f'person_keypoints_{split}.json')


def detection_path(out_dir: str) -> str:
    return osp.join(out_dir, 'person_detection_results', 'detections_val.json')


def generate_split(out_dir: str, split: str, num_images: int, seed: int,
                   image_size: Tuple[int, int], max_figures: int, max_clutter: int) -> dict:
    """Render ``num_images`` scenes into ``out_dir/split`` and return their COCO dict.

    Image and annotation ids start at 1; ``category_id`` is 1 (person).
    """
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    images, annotations = [], []
    width, height = image_size
    for index in range(num_images):
        rng = np.random.default_rng([seed, SPLITS.index(split), index])
        scene = sample_scene(rng, image_size, max_figures, max_clutter)
        image, owner = render_scene(scene)
        image_id = index + 1
        file_name = f'{image_id:06d}.jpg'
        cv2.imwrite(osp.join(out_dir, split, file_name), image,
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
        for ann in annotate_scene(scene, owner):
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id, category_id=1, iscrowd=0,
                bbox=ann['bbox'], area=ann['area'], num_keypoints=ann['num_keypoints'],
                keypoints=[round(float(v), 2) for v in ann['keypoints'].ravel()]))
    return dict(info=dict(description=f'poseur_mm synthetic pose, {split}, seed {seed}'),
                licenses=[], images=images, annotations=annotations,
                categories=[person_category()])


def jitter_detections(coco: dict, rng: np.random.Generator) -> List[dict]:
    """One jittered, scored box per annotated figure, in COCO detection-result format."""
    sizes = {image['id']: (image['width'], image['height']) for image in coco['images']}
    detections = []
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        cx = x + w / 2 + rng.normal(0, CENTER_JITTER * w)
        cy = y + h / 2 + rng.normal(0, CENTER_JITTER * h)
        w, h = w * np.exp(rng.normal(0, SCALE_JITTER)), h * np.exp(rng.normal(0, SCALE_JITTER))
        img_w, img_h = sizes[ann['image_id']]
        x0, y0 = np.clip(cx - w / 2, 0, img_w - 1), np.clip(cy - h / 2, 0, img_h - 1)
        x1, y1 = np.clip(cx + w / 2, x0 + 1, img_w), np.clip(cy + h / 2, y0 + 1, img_h)
        detections.append(dict(image_id=ann['image_id'], category_id=1,
                               bbox=[round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                               score=round(float(rng.uniform(*SCORE_RANGE)), 4)))
    return detections


def generate_dataset(out_dir: str, num_train: int = 2500, num_val: int = 250, seed: int = 0,
                     image_size: Tuple[int, int] = (320, 240), max_figures: int = 3,
                     max_clutter: int = 2) -> Dict[str, str]:
    """Write both splits and the val detections.

    Args:
        out_dir (str): dataset root.
        num_train (int): training images. Defaults to 2500.
        num_val (int): validation images. Defaults to 250.
        seed (int): seed of everything. Defaults to 0.
        image_size (tuple[int, int]): image (w, h). Defaults to (320, 240).
        max_figures (int): figures per image are 1 to this. Defaults to 3.
        max_clutter (int): clutter shapes under, and over, the figures are 0 to this.
            Defaults to 2.

    Returns:
        dict: paths of the ``train`` and ``val`` annotation files and of ``detections``.
    """
    paths = {}
    for split, num_images in zip(SPLITS, (num_train, num_val)):
        coco = generate_split(out_dir, split, num_images, seed, image_size, max_figures,
                              max_clutter)
        paths[split] = annotation_path(out_dir, split)
        os.makedirs(osp.dirname(paths[split]), exist_ok=True)
        with open(paths[split], 'w') as f:
            json.dump(coco, f)
    detections = jitter_detections(coco, np.random.default_rng([seed, len(SPLITS)]))
    paths['detections'] = detection_path(out_dir)
    os.makedirs(osp.dirname(paths['detections']), exist_ok=True)
    with open(paths['detections'], 'w') as f:
        json.dump(detections, f)
    return paths


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out-dir', default='data/synthetic_pose')
    parser.add_argument('--num-train', type=int, default=2500)
    parser.add_argument('--num-val', type=int, default=250)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--image-size', type=int, nargs=2, default=(320, 240),
                        metavar=('W', 'H'))
    parser.add_argument('--max-figures', type=int, default=3)
    parser.add_argument('--max-clutter', type=int, default=2)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = generate_dataset(args.out_dir, args.num_train, args.num_val, args.seed,
                             tuple(args.image_size), args.max_figures, args.max_clutter)
    print(f'synthetic pose dataset in {args.out_dir} ({time.perf_counter() - start:.1f} s): '
          + ', '.join(f'{k} {v}' for k, v in paths.items()))


if __name__ == '__main__':
    main()
