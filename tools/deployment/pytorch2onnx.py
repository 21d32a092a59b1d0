"""Export a top-down Poseur model to ONNX and check onnxruntime against PyTorch.

The graph is :func:`poseur_mm.deploy.export_onnx`'s (crops in; keypoints, scores and sigmas
in crop pixels out; the config's flip test inside unless ``--no-flip-test``). With
``--check-images`` the command runs MMPose's predict and onnxruntime on the same crops and
fails when they differ beyond the tolerances below.

Usage (from the repository root)::

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT OUT.onnx --check-images a.jpg
    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT OUT.onnx --no-flip-test
"""
import argparse
import os.path as osp
import time
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmpose.apis import init_model
from mmpose.models.pose_estimators import TopdownPoseEstimator

from poseur_mm.deploy.export import (DEFAULT_OPSET, MIN_OPSET, create_session, crop_to_image,
                                     export_onnx, run_onnx)

# Parity required between onnxruntime and PyTorch (float32, CPU).
KEYPOINT_TOLERANCE = 1e-2  # input-crop pixels
SCORE_TOLERANCE = 1e-4


def make_crops(model: TopdownPoseEstimator,
               images: Sequence[str],
               bboxes: Optional[Sequence[np.ndarray]] = None) -> dict:
    """Person crops through the model config's test pipeline.

    Args:
        model (TopdownPoseEstimator): built by ``mmpose.apis.init_model`` (has ``cfg`` and
            ``dataset_meta``).
        images (Sequence[str]): image paths.
        bboxes (Sequence[np.ndarray], optional): per image, person boxes (x1, y1, x2, y2),
            shape (N_i, 4). Defaults to one box over the whole image.

    Returns:
        dict: the collated batch: ``inputs`` (list of (3, H, W) uint8 tensors, one per box)
        and ``data_samples`` (their ``PoseDataSample``).
    """
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    samples = []
    for index, image in enumerate(images):
        if bboxes is None:
            height, width = mmcv.imread(image).shape[:2]
            boxes = np.array([[0, 0, width, height]], dtype=np.float32)
        else:
            boxes = np.asarray(bboxes[index], dtype=np.float32).reshape(-1, 4)
        for box in boxes:
            info = dict(img_path=image, bbox=box[None], bbox_score=np.ones(1, np.float32))
            info.update(model.dataset_meta)
            samples.append(pipeline(info))
    return pseudo_collate(samples)


def compare_with_pytorch(model: TopdownPoseEstimator, onnx_file: str, batch: dict,
                         flip_test: bool) -> Dict[str, float]:
    """Run PyTorch (MMPose's predict) and onnxruntime on the same crops, both with or both
    without flip test.

    onnxruntime's crop keypoints go through :func:`crop_to_image`; the difference to
    PyTorch's image keypoints is converted back to crop pixels.

    Args:
        model (TopdownPoseEstimator): the estimator that was exported.
        onnx_file (str): the exported graph.
        batch (dict): crops from :func:`make_crops`, run as one batch.
        flip_test (bool): whether the graph was exported with flip test.

    Returns:
        dict: ``keypoint_error`` and ``sigma_error`` (max abs, crop pixels),
        ``score_error`` (max abs) and ``num_crops``.
    """
    session = create_session(onnx_file)
    keypoints, scores, sigmas = run_onnx(session, torch.stack(batch['inputs']).float().numpy())

    configured = model.test_cfg.get('flip_test', False)
    model.test_cfg['flip_test'] = flip_test
    try:
        with torch.no_grad():
            results = model.test_step(batch)
    finally:
        model.test_cfg['flip_test'] = configured
    keypoint_error = sigma_error = score_error = 0.0
    for i, result in enumerate(results):
        meta = result.metainfo
        crop_scale = np.asarray(meta['input_size']) / meta['input_scale']  # crop px / image px
        in_image = crop_to_image(keypoints[i], meta['input_center'], meta['input_scale'],
                                 meta['input_size'])
        diff = np.abs(in_image - result.pred_instances.keypoints[0]) * crop_scale
        keypoint_error = max(keypoint_error, float(diff.max()))
        sigma_diff = np.abs(sigmas[i] - result.pred_instances.keypoint_sigmas[0] * crop_scale)
        sigma_error = max(sigma_error, float(sigma_diff.max()))
        score_diff = np.abs(scores[i] - result.pred_instances.keypoint_scores[0])
        score_error = max(score_error, float(score_diff.max()))
    return dict(keypoint_error=keypoint_error, sigma_error=sigma_error, score_error=score_error,
                num_crops=len(results))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a top-down Poseur model to ONNX (crops -> keypoints and sigmas in '
        'crop pixels, scores; dynamic batch) and check onnxruntime against PyTorch.')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('out', help='output .onnx file')
    parser.add_argument(
        '--opset',
        type=int,
        default=DEFAULT_OPSET,
        help=f'ONNX opset, >= {MIN_OPSET} (default: %(default)s)')
    parser.add_argument(
        '--check-images',
        nargs='+',
        default=[],
        metavar='IMAGE',
        help='images to compare onnxruntime with PyTorch on (one whole-image '
        'crop each); the command fails when keypoints differ by more than '
        f'{KEYPOINT_TOLERANCE} crop pixels (keypoints or sigmas) or scores by more than '
        f'{SCORE_TOLERANCE}')
    parser.add_argument(
        '--no-flip-test',
        action='store_true',
        help="export one pass even when the config's test_cfg has flip_test=True (half the "
        'cost, the accuracy of no flip test)')
    parser.add_argument('--device', default='cpu', help='device for PyTorch (default: cpu)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, device=args.device)
    flip_test = model.test_cfg.get('flip_test', False) and not args.no_flip_test
    start = time.perf_counter()
    export_onnx(model, args.out, args.opset, flip_test)
    print(f'exported {args.out} ({osp.getsize(args.out) / 2**20:.1f} MiB, opset {args.opset}, '
          f'flip test {"on" if flip_test else "off"}) in {time.perf_counter() - start:.1f} s')
    if not args.check_images:
        return
    errors = compare_with_pytorch(model, args.out, make_crops(model, args.check_images),
                                  flip_test)
    print(f'onnxruntime vs PyTorch, {errors["num_crops"]} crop(s): max keypoint error '
          f'{errors["keypoint_error"]:.2e} px, max sigma error {errors["sigma_error"]:.2e} px, '
          f'max score error {errors["score_error"]:.2e}')
    if (max(errors['keypoint_error'], errors['sigma_error']) > KEYPOINT_TOLERANCE
            or errors['score_error'] > SCORE_TOLERANCE):
        raise SystemExit(f'onnxruntime differs from PyTorch beyond the tolerances '
                         f'({KEYPOINT_TOLERANCE} px, {SCORE_TOLERANCE} score)')


if __name__ == '__main__':
    main()
