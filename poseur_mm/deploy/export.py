"""Export a top-down Poseur model to ONNX and run the graph with onnxruntime.

The exported graph takes person crops as the test pipeline makes them (``TopdownAffine``
output: BGR, 0-255, fixed input size) and returns keypoints in crop pixels, their Laplace
uncertainty scores and their Laplace scales (sigmas) in crop pixels. Normalisation, the
config's flip test and decoding are inside the graph; a deployment only maps the keypoints
back to the image with :func:`crop_to_image`. The command line (export, parity check on
images) is ``tools/deployment/pytorch2onnx.py``.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
import onnxruntime as ort
import torch
from mmpose.models.pose_estimators import TopdownPoseEstimator
from torch import Tensor, nn

from poseur_mm.models.heads import PoseurHead

# nn.MultiheadAttention exports (scaled_dot_product_attention) from opset 14; 17 adds
# LayerNormalization as one node.
DEFAULT_OPSET = 17
MIN_OPSET = 14
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
                   batch: Optional[int] = None,
                   profile_prefix: Optional[str] = None) -> ort.InferenceSession:
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
        profile_prefix (str, optional): record onnxruntime's per-node profile; its JSON
            file starts with this path and is written by ``session.end_profiling()``.
            Defaults to None (no profile).

    Returns:
        ort.InferenceSession: the session.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if batch:
        options.add_free_dimension_override_by_name(BATCH_AXIS, batch)
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
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
