"""Export a top-down Poseur model to ONNX and check onnxruntime against PyTorch.

The exported graph takes person crops as the test pipeline makes them (``TopdownAffine``
output: BGR, 0-255, fixed input size) and returns keypoints in crop pixels, their Laplace
uncertainty scores and their Laplace scales (sigmas) in crop pixels. Normalisation, the config's flip test and decoding are inside the
graph; a deployment only maps the keypoints back to the image with :func:`crop_to_image`.

Usage::

    python -m poseur_mm.deploy.export CONFIG CHECKPOINT OUT.onnx --check-images a.jpg b.jpg
    python -m poseur_mm.deploy.export CONFIG CHECKPOINT OUT.onnx --no-flip-test
"""
import argparse
import os.path as osp
import time
from typing import Dict, Optional, Sequence, Tuple

import mmcv
import numpy as np
import onnxruntime as ort
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmpose.apis import init_model
from mmpose.models.pose_estimators import TopdownPoseEstimator
from torch import Tensor, nn

from poseur_mm.models.heads import PoseurHead

# nn.MultiheadAttention exports (scaled_dot_product_attention) from opset 14; 17 adds
# LayerNormalization as one node.
DEFAULT_OPSET = 17
MIN_OPSET = 14
# Parity required between onnxruntime and PyTorch (float32, CPU).
KEYPOINT_TOLERANCE = 1e-2  # input-crop pixels
SCORE_TOLERANCE = 1e-4
INPUT_NAME = 'crops'
BATCH_AXIS = 'batch'  # name of the dynamic batch dimension
OUTPUT_NAMES = ('keypoints', 'scores', 'sigmas')
EMPTY_BATCH = ('a Poseur graph needs at least one crop, got a batch of 0: skip the call when '
               'an image has no person box')


class PoseurDeployModel(nn.Module):
    """A top-down Poseur estimator as one function: crops -> keypoints, scores, sigmas.

    Runs the estimator's normalisation (``data_preprocessor``: channel order, mean, std), the
    backbone, the neck and the head's last decoder layer, then decodes in the graph:
    coordinates and sigmas times the codec's input size (w, h) and the head's Laplace
    score. With flip
    test (the config's ``test_cfg.flip_test`` unless ``flip_test`` says otherwise) the graph
    also runs the horizontally flipped crops and fuses both passes exactly as
    :meth:`PoseurHead.predict` does (``flip_coordinates`` with the config's
    ``shift_coords``, the head's ``flip_fusion``).

    Note:
        B: batch size, K: keypoints, (W, H): the codec's ``input_size``.

    Args:
        model (TopdownPoseEstimator): an estimator with a :class:`PoseurHead` whose
            ``decoder`` (codec) is set, and with ``dataset_meta`` (``init_model`` sets it)
            when flip test is on. The wrapper starts in eval mode, so does the model (the
            exporter restores the wrapper's mode afterwards: a training-mode wrapper would
            leave the model adding noisy query groups).
        flip_test (bool, optional): run the flip test in the graph. Defaults to the
            config's ``test_cfg.flip_test``.
    """

    def __init__(self, model: TopdownPoseEstimator, flip_test: Optional[bool] = None):
        super().__init__()
        if not isinstance(model, TopdownPoseEstimator) or not isinstance(model.head, PoseurHead):
            raise TypeError(f'expected a TopdownPoseEstimator with a PoseurHead, got '
                            f'{type(model).__name__} with {type(model.head).__name__}; '
                            'export a top-down Poseur config')
        if model.head.decoder is None:
            raise ValueError('the PoseurHead has no codec; set head.decoder to the '
                             'RegressionLabel codec of the config')
        self.model = model
        preprocessor = model.data_preprocessor
        self.swap_channels = bool(preprocessor._channel_conversion)
        self.normalize = bool(preprocessor._enable_normalize)
        width, height = model.head.decoder.input_size
        self.input_size = (int(width), int(height))
        self.register_buffer('crop_size', torch.tensor([width, height], dtype=torch.float32))
        test_cfg = model.test_cfg or {}
        self.flip_test = test_cfg.get('flip_test', False) if flip_test is None else flip_test
        self.shift_coords = test_cfg.get('shift_coords', True)
        self.flip_indices = None
        if self.flip_test:
            flip_indices = (getattr(model, 'dataset_meta', None) or {}).get('flip_indices')
            model.head.check_dataset_meta(dict(flip_indices=flip_indices), flip_test=True)
            self.flip_indices = list(flip_indices)
        self.eval()

    def forward(self, crops: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """
        Args:
            crops (Tensor): person crops as ``PackPoseInputs`` makes them (BGR when the
                pipeline loads with OpenCV), float, shape (B, 3, H, W).

        Returns:
            tuple[Tensor, Tensor, Tensor]: keypoints in crop pixels (B, K, 2), scores
            (B, K) and each keypoint's Laplace scale per axis in crop pixels (B, K, 2).
        """
        if not torch.jit.is_tracing() and len(crops) == 0:
            raise ValueError(EMPTY_BATCH)
        preprocessor = self.model.data_preprocessor
        if self.swap_channels:
            crops = crops[:, [2, 1, 0]]
        if self.normalize:
            crops = (crops - preprocessor.mean) / preprocessor.std
        feats = self.model.extract_feat(crops)
        feats_flip = self.model.extract_feat(crops.flip(-1)) if self.flip_test else None
        coords, sigma, scores = self.model.head.coords_sigma_scores(feats, feats_flip,
                                                                    self.flip_indices,
                                                                    self.shift_coords)
        return coords * self.crop_size, scores, sigma * self.crop_size


def create_session(onnx_file: str,
                   threads: Optional[int] = None,
                   batch: Optional[int] = None) -> ort.InferenceSession:
    """An onnxruntime CPU session of an exported graph, all graph optimisations on.

    With ``batch``, the graph's dynamic batch dimension is fixed for this session
    (``add_free_dimension_override_by_name``): onnxruntime then folds the decoder's shape
    arithmetic into constants, ~1 ms of Poseur-R50's batch-1 latency on one thread. Such
    a session refuses every other batch size; keep one session per batch size.

    Args:
        onnx_file (str): the exported graph.
        threads (int, optional): intra-op threads. Defaults to onnxruntime's choice.
        batch (int, optional): the only batch size the session will run. Defaults to
            None (any batch size).

    Returns:
        ort.InferenceSession: the session.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if batch:
        options.add_free_dimension_override_by_name(BATCH_AXIS, batch)
    return ort.InferenceSession(onnx_file, options, providers=['CPUExecutionProvider'])


def run_onnx(session: ort.InferenceSession,
             crops: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run an exported graph on crops.

    Args:
        session (ort.InferenceSession): a session of the exported graph.
        crops (np.ndarray): float32 crops, shape (B, 3, H, W), B >= 1.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: keypoints in crop pixels (B, K, 2),
        scores (B, K) and sigmas in crop pixels (B, K, 2).

    Raises:
        ValueError: for an empty batch, which the graph's GroupNorm reshape cannot take.
    """
    if len(crops) == 0:
        raise ValueError(EMPTY_BATCH)
    keypoints, scores, sigmas = session.run(list(OUTPUT_NAMES), {INPUT_NAME: crops})
    return keypoints, scores, sigmas


def crop_to_image(keypoints: np.ndarray, input_center: np.ndarray, input_scale: np.ndarray,
                  input_size: Sequence[int]) -> np.ndarray:
    """Map crop-pixel keypoints to the image, as ``TopdownPoseEstimator`` does.

    Args:
        keypoints (np.ndarray): keypoints in crop pixels, shape (K, 2).
        input_center (np.ndarray): the crop's box centre in the image, shape (2,).
        input_scale (np.ndarray): the crop's box size (w, h) in the image, shape (2,).
        input_size (Sequence[int]): crop size (w, h) in pixels.

    Returns:
        np.ndarray: keypoints in image pixels, shape (K, 2).
    """
    return keypoints / np.asarray(input_size) * input_scale + input_center - 0.5 * input_scale


def export_onnx(model: TopdownPoseEstimator, out_file: str, opset: int = DEFAULT_OPSET,
                flip_test: Optional[bool] = None) -> None:
    """Write the model's :class:`PoseurDeployModel` graph, batch dimension dynamic.

    Args:
        model (TopdownPoseEstimator): the Poseur estimator (put in eval mode).
        out_file (str): path of the ``.onnx`` file.
        opset (int): ONNX opset, at least 14. Defaults to 17.
        flip_test (bool, optional): flip test in the graph. Defaults to the config's.
    """
    if opset < MIN_OPSET:
        raise ValueError(f'opset {opset} cannot express the decoder\'s self-attention '
                         f'(scaled_dot_product_attention); use opset >= {MIN_OPSET}')
    deploy = PoseurDeployModel(model, flip_test)
    width, height = deploy.input_size
    device = next(model.parameters()).device
    # batch 2 so the exporter records the batch dimension symbolically, not a constant 1
    dummy = torch.zeros(2, 3, height, width, device=device)
    batch_axis = {0: BATCH_AXIS}
    with torch.no_grad():
        torch.onnx.export(
            deploy, (dummy, ),
            out_file,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: batch_axis
                          for name in (INPUT_NAME, *OUTPUT_NAMES)})


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
