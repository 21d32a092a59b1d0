"""Flip-test check for PoseurHead: which flipped input, and which un-flip, a fitted model wants.

Fits a small Poseur model (ResNet-18 from scratch, ChannelMapper, PoseurHead) to the people of
MMPose's COCO test data with RandomFlip (and optionally RandomBBoxTransform), then evaluates
it with MMPose's CocoMetric on ground-truth boxes under these flipped inputs:

- ``tensor``: ``inputs.flip(-1)``, what ``TopdownPoseEstimator`` feeds; un-flipped with
  ``shift_coords=True`` (MMPose's default) and with ``shift_coords=False``.
- ``pad``: the tensor flip moved right by one crop pixel (edge column replicated), which is the
  crop RandomFlip + TopdownAffine make in training; un-flipped with ``shift_coords=False``.
- ``rewarp``: the flipped image cropped by MMPose's own RandomFlip(prob=1) + TopdownAffine,
  i.e. exactly a training flip; un-flipped with ``shift_coords=False``.

Controls without flip: the plain crop moved one pixel left or right (and the prediction moved
back), to tell a flip-convention error from plain sensitivity to a 1-px translation.

For each flipped input and un-flip it also reports, in crop pixels over visible keypoints, the
offset of the un-flipped pass from the plain pass and the error against the ground truth of
the plain pass, the un-flipped pass and their average.

Example (about 10 CPU-minutes single-threaded; 40 wall-minutes on a busy 2-core machine)::

    python -W ignore tools/analysis/flip_check.py --iters 800 \
        --out work_dirs/flip_check/flip_only.json
"""
import argparse
import copy
import json
import os
import os.path as osp
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmpose.datasets import CocoDataset
from mmpose.datasets.transforms import LoadImage
from mmpose.evaluation import CocoMetric
from mmpose.models.utils.tta import flip_coordinates
from mmpose.registry import MODELS
from mmpose.utils import register_all_modules

import poseur_mm  # noqa: F401

COCO_ROOT = osp.join(osp.dirname(__file__), '..', '..', 'tests', 'data', 'coco')
ANN_FILE = 'test_coco.json'
INPUT_SIZE = (96, 128)  # (w, h)
CODEC = dict(type='RegressionLabel', input_size=INPUT_SIZE)
BBOX_TRANSFORMS = {
    'none': None,
    # translation only, up to +-0.02 of the padded box (about +-2 crop px)
    'shift': dict(type='RandomBBoxTransform', shift_factor=0.02, shift_prob=1.0,
                  scale_prob=0.0, rotate_prob=0.0),
    'default': dict(type='RandomBBoxTransform'),  # MMPose's training default
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=800, help='training iterations')
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--embed-dims', type=int, default=128)
    parser.add_argument('--num-layers', type=int, default=2, help='decoder layers')
    parser.add_argument('--bbox-transform', choices=sorted(BBOX_TRANSFORMS), default='none')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads; more than the free cores slows a shared machine '
                        'down several times')
    parser.add_argument('--weights', help='evaluate these saved weights instead of training')
    parser.add_argument('--out', help='json file for the results; the weights go next to it '
                        '(.pth)')
    return parser.parse_args()


def build_model(embed_dims: int, num_layers: int):
    """ResNet-18 (random init) + ChannelMapper + PoseurHead, Poseur's published neck shape."""
    return MODELS.build(dict(
        type='TopdownPoseEstimator',
        data_preprocessor=dict(type='PoseDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3)),
        neck=dict(type='ChannelMapper', in_channels=[64, 128, 256, 512],
                  out_channels=embed_dims, kernel_size=1, act_cfg=None,
                  norm_cfg=dict(type='GN', num_groups=32), num_outs=4),
        head=dict(type='PoseurHead', in_channels=embed_dims, embed_dims=embed_dims,
                  num_joints=17, query_decoder=dict(num_layers=num_layers,
                                                    layer_cfg=dict(ffn_dims=4 * embed_dims)),
                  decoder=CODEC),
        test_cfg=dict(flip_test=False)))


def load_people(test_mode: bool) -> list:
    """Data infos of every person with the image already loaded by MMPose's LoadImage."""
    dataset = CocoDataset(data_root=COCO_ROOT, ann_file=ANN_FILE, data_mode='topdown',
                          data_prefix=dict(img=''), pipeline=[], test_mode=test_mode)
    load = LoadImage()
    return [load(dataset.get_data_info(i)) for i in range(len(dataset))], dataset.metainfo


def make_batch(infos: list, steps: list) -> dict:
    pipeline = Compose(steps + [dict(type='PackPoseInputs')])
    return pseudo_collate([pipeline(copy.deepcopy(info)) for info in infos])


def train(model, infos: list, iters: int, lr: float, bbox_transform: str) -> list:
    """Full-batch AdamW with cosine decay; returns the logged (iter, loss, acc) tuples."""
    steps = [dict(type='GetBBoxCenterScale'), dict(type='RandomFlip', direction='horizontal')]
    if BBOX_TRANSFORMS[bbox_transform]:
        steps.append(BBOX_TRANSFORMS[bbox_transform])
    steps += [dict(type='TopdownAffine', input_size=INPUT_SIZE),
              dict(type='GenerateTarget', encoder=CODEC)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    wrapper = OptimWrapper(optimizer)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=iters,
                                                   pct_start=0.05)
    model.train()
    log, start = [], time.time()
    for it in range(1, iters + 1):
        losses = model.train_step(make_batch(infos, steps), wrapper)
        schedule.step()
        if it % 50 == 0 or it == iters:
            total = sum(float(v) for k, v in losses.items() if k.startswith('loss'))
            log.append((it, total, float(losses['acc_pose'])))
            print(f'iter {it:5d}  loss {total:9.3f}  acc_pose {float(losses["acc_pose"]):.3f}  '
                  f'{time.time() - start:6.0f}s', flush=True)
    return log


def shift_columns(inputs, pixels: int):
    """Move the content ``pixels`` columns right (left if negative), replicating the edge."""
    if pixels > 0:
        return F.pad(inputs[..., :-pixels], (pixels, 0, 0, 0), mode='replicate')
    return F.pad(inputs[..., -pixels:], (0, -pixels, 0, 0), mode='replicate')


def coco_ap(model, samples: list, preds: list, metainfo: dict) -> dict:
    """AP of crop-pixel predictions through the estimator's mapping and MMPose's CocoMetric."""
    samples = model.add_pred_to_datasample(preds, None, copy.deepcopy(samples))
    with tempfile.TemporaryDirectory() as tmp:
        metric = CocoMetric(ann_file=osp.join(COCO_ROOT, ANN_FILE), score_mode='bbox_rle',
                            nms_mode='oks_nms', outfile_prefix=osp.join(tmp, 'flip_check'))
        metric.dataset_meta = metainfo
        metric.process([], [s.to_dict() for s in samples])
        results = metric.evaluate(size=len(samples))
    return {k.split('/')[-1]: round(float(v), 4) for k, v in results.items()
            if k.split('/')[-1] in ('AP', 'AP .5', 'AP .75')}


def ground_truth(samples: list):
    """Ground-truth keypoints in crop pixels (B, K, 2) and visibility (B, K)."""
    width, height = INPUT_SIZE
    kpts, vis = [], []
    for s in samples:
        center, scale = s.metainfo['input_center'], s.metainfo['input_scale']
        xy = np.asarray(s.gt_instances.keypoints[0])  # (K, 2) image px
        kpts.append((xy - center) / scale * (width, height) + (width / 2, height / 2))
        vis.append(np.asarray(s.gt_instances.keypoints_visible[0]) > 0)
    return torch.as_tensor(np.stack(kpts)).float(), torch.as_tensor(np.stack(vis))


def offset_stats(flipped, plain, gt, vis) -> dict:
    """Crop-pixel offsets of the un-flipped pass from the plain pass, and the mean L2 error
    against the ground truth of the un-flipped pass and of the average of both passes."""
    delta = (flipped - plain)[vis]

    def error(coords):
        return round(float((coords - gt)[vis].norm(dim=-1).mean()), 3)

    return dict(mean_dx=round(float(delta[:, 0].mean()), 3),
                mean_dy=round(float(delta[:, 1].mean()), 3),
                mean_abs_dx=round(float(delta[:, 0].abs().mean()), 3),
                mean_abs_dy=round(float(delta[:, 1].abs().mean()), 3),
                flipped_err=error(flipped), averaged_err=error((flipped + plain) / 2))


@torch.no_grad()
def evaluate(model, infos: list, metainfo: dict) -> dict:
    model.eval()
    head = model.head
    width, height = INPUT_SIZE
    pixels = torch.tensor([width, height], dtype=torch.float32)
    base = [dict(type='GetBBoxCenterScale')]
    affine = [dict(type='TopdownAffine', input_size=INPUT_SIZE)]
    plain = model.data_preprocessor(make_batch(infos, base + affine), training=False)
    rewarp = model.data_preprocessor(make_batch(
        infos, base + [dict(type='RandomFlip', prob=1.0, direction='horizontal')] + affine),
        training=False)
    samples, inputs = plain['data_samples'], plain['inputs']
    flip_indices = samples[0].metainfo['flip_indices']
    feats = model.extract_feat(inputs)
    flipped_inputs = dict(tensor=inputs.flip(-1), pad=shift_columns(inputs.flip(-1), 1),
                          rewarp=rewarp['inputs'])
    flipped_feats = {name: model.extract_feat(x) for name, x in flipped_inputs.items()}
    gt, vis = ground_truth(samples)
    plain_coords = head(feats)[..., :2] * pixels

    results = dict(plain=coco_ap(model, samples, head.predict(feats, samples, {}), metainfo))
    for pixels_moved in (-1, 1):
        preds = head.predict(model.extract_feat(shift_columns(inputs, pixels_moved)), samples, {})
        for pred in preds:
            pred.keypoints[..., 0] -= pixels_moved
        results[f'plain_moved_{pixels_moved:+d}px'] = coco_ap(model, samples, preds, metainfo)

    runs = [('tensor', True), ('tensor', False), ('pad', False), ('rewarp', False)]
    for fusion in ('average', 'uncertainty'):
        head.flip_fusion = fusion
        for name, shift in runs:
            preds = head.predict((feats, flipped_feats[name]), samples,
                                 dict(flip_test=True, shift_coords=shift))
            results[f'flip_{name}_shift{shift}_{fusion}'] = coco_ap(model, samples, preds,
                                                                    metainfo)
    results['plain_err'] = round(float((plain_coords - gt)[vis].norm(dim=-1).mean()), 3)
    for name, shift in runs:
        coords = flip_coordinates(head(flipped_feats[name])[..., :2].clone(), flip_indices,
                                  shift_coords=shift, input_size=INPUT_SIZE) * pixels
        results[f'offsets_{name}_shift{shift}'] = offset_stats(coords, plain_coords, gt, vis)
    return results


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    register_all_modules()
    model = build_model(args.embed_dims, args.num_layers)
    MMLogger.get_current_instance().setLevel('WARNING')  # init_weights logs every parameter
    model.init_weights()
    start = time.time()
    if args.weights:
        model.load_state_dict(torch.load(args.weights))
        log = []
    else:
        train_infos, _ = load_people(test_mode=False)
        log = train(model, train_infos, args.iters, args.lr, args.bbox_transform)
    train_s = time.time() - start
    test_infos, metainfo = load_people(test_mode=True)
    results = evaluate(model, test_infos, metainfo)
    report = dict(args=vars(args), train_seconds=round(train_s), people=len(test_infos),
                  train_log=log, results=results)
    print(json.dumps(results, indent=1))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
        if not args.weights:
            torch.save(model.state_dict(), osp.splitext(args.out)[0] + '.pth')


if __name__ == '__main__':
    main()
