"""Poseur head: coarse GAP+FC regression refined by a keypoint-query decoder."""
import copy
import warnings
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmpose.evaluation.functional import keypoint_pck_accuracy
from mmpose.models.heads.base_head import BaseHead
from mmpose.models.utils.tta import flip_coordinates
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.tensor_utils import to_numpy
from mmpose.utils.typing import ConfigType, OptConfigType, OptSampleList, Predictions
from torch import Tensor, nn

from ..layers.positional_encoding import grid_encoding
from ..utils import laplace_score
from .release_compat import convert_release_head, is_release_head

# Noisy reference points (training only), as published: noise clipped to +-NOISE_CLIP and
# perturbed points to NOISY_POINT_RANGE, in normalised crop coordinates.
NOISE_CLIP = 1.0
NOISY_POINT_RANGE = (-0.7, 1.7)
FLIP_FUSIONS = ('average', 'uncertainty')
# Exponent of the uncertainty score in the published flip fusion.
UNCERTAINTY_FUSION_POWER = 5


@MODELS.register_module()
class PoseurHead(BaseHead):
    """Poseur head: `Direct Human Pose Regression with Transformers
    <https://arxiv.org/abs/2201.07412>`_ (ECCV 2022).

    A coarse regression (global average pool of the last feature level, then a linear
    layer on the L2-normalised vector) predicts keypoints; a :class:`KeypointEncoder` turns
    them into queries; a :class:`PoseurDecoder` refines them with EMSDA cross-attention over
    all feature levels. Every output (coarse and each decoder layer) is trained with
    :class:`PoseurRLELoss`. While training, ``num_noise_groups`` extra query groups start
    from perturbed copies of the coarse keypoints; they never attend to the real group.

    ``forward`` returns sigma *logits*; the sigmoid happens in the loss and in ``predict``.

    The coarse regression pools the neck's last map, which GroupNorm centres per group: keep
    several channels per group (the published 256 channels in 32 groups), since with one
    channel per group every pooled channel is ~0 and the normalised vector carries no image
    information.
    The keypoint score is the Laplace uncertainty score of :func:`laplace_score`.

    Note:
        - B: batch size, K: ``num_joints``, G: query groups (1 + ``num_noise_groups`` when
          training, 1 otherwise), Q = G * K
        - L: ``num_feature_levels``, C: ``embed_dims``, N: memory tokens (sum of H_l * W_l)

    Args:
        in_channels (int | Sequence[int]): channels of each input feature level; all must
            equal ``embed_dims`` (set the neck's ``out_channels`` to it).
        num_joints (int): keypoints K.
        num_feature_levels (int): feature levels L from the neck. Defaults to 4.
        embed_dims (int): transformer channels C. Defaults to 256.
        query_decoder (dict, optional): :class:`PoseurDecoder` arguments. Its ``layer_cfg``
            must not set ``embed_dims`` or ``num_levels``: the head passes its own
            ``embed_dims`` and ``num_feature_levels``. Defaults to 6 layers with 8 heads,
            4 points, FFN 1024 and dropout 0.1.
        num_noise_groups (int): noisy query groups while training. Defaults to 3.
        noisy_points_per_group (int): perturbed keypoints per group on average; the slots
            are drawn at random among all noisy-group slots, once per batch. Defaults to 4.
        noise_variance (float): variance of the Gaussian noise. Defaults to 0.2.
        score_radius (float): radius a of the Laplace uncertainty score, in normalised
            crop units. Defaults to 0.2.
        flip_fusion (str): how flip test fuses the two passes: ``'average'`` (mean of the
            coordinates and sigmas) or ``'uncertainty'`` (coordinates weighted by each
            pass's score to the 5th power, scores averaged). Defaults to ``'average'``.
        loss (dict): config of the loss, built twice: for the coarse output and for the
            decoder layers (one flow each). Defaults to ``PoseurRLELoss``.
        decoder (dict, optional): the codec config (``RegressionLabel``), needed by
            ``predict``. Defaults to None.
        init_cfg (dict, optional): extra init config, applied before each submodule's own
            ``init_weights``. Defaults to None.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 num_joints: int,
                 num_feature_levels: int = 4,
                 embed_dims: int = 256,
                 query_decoder: Optional[dict] = None,
                 num_noise_groups: int = 3,
                 noisy_points_per_group: int = 4,
                 noise_variance: float = 0.2,
                 score_radius: float = 0.2,
                 flip_fusion: str = 'average',
                 loss: ConfigType = dict(type='PoseurRLELoss'),
                 decoder: OptConfigType = None,
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg)
        channels = [in_channels] * num_feature_levels if isinstance(in_channels, int) \
            else list(in_channels)
        if len(channels) != num_feature_levels or any(c != embed_dims for c in channels):
            raise ValueError(
                f'PoseurHead needs {num_feature_levels} feature levels of embed_dims='
                f'{embed_dims} channels, got in_channels={in_channels}; map the backbone '
                f'outputs with a ChannelMapper neck (out_channels={embed_dims}, '
                f'num_outs={num_feature_levels})')
        if flip_fusion not in FLIP_FUSIONS:
            raise ValueError(f'unknown flip_fusion {flip_fusion!r}; use one of {FLIP_FUSIONS}')
        if not 0 <= noisy_points_per_group <= num_joints:
            raise ValueError(f'noisy_points_per_group must lie in [0, num_joints={num_joints}], '
                             f'got {noisy_points_per_group}')
        self.in_channels = in_channels
        self.num_joints = num_joints
        self.num_feature_levels = num_feature_levels
        self.embed_dims = embed_dims
        self.num_noise_groups = num_noise_groups
        self.noisy_points_per_group = noisy_points_per_group
        self.noise_variance = noise_variance
        self.score_radius = score_radius
        self.flip_fusion = flip_fusion

        self.coarse_coord = nn.Linear(embed_dims, num_joints * 2)
        self.coarse_sigma = nn.Linear(embed_dims, num_joints * 2)
        self.level_embed = nn.Parameter(torch.randn(num_feature_levels, embed_dims))
        self.keypoint_encoder = MODELS.build(
            dict(type='KeypointEncoder', num_joints=num_joints, embed_dims=embed_dims))
        query_decoder = copy.deepcopy(query_decoder) if query_decoder else {}
        layer_cfg = query_decoder.setdefault('layer_cfg', {})
        for key, owner in (('embed_dims', 'embed_dims'), ('num_levels', 'num_feature_levels')):
            if key in layer_cfg:
                raise ValueError(
                    f'query_decoder.layer_cfg.{key} is set by PoseurHead.{owner}: remove it '
                    f'from layer_cfg (got {layer_cfg[key]}) and set the head\'s {owner}')
        layer_cfg.update(embed_dims=embed_dims, num_levels=num_feature_levels)
        self.query_decoder = MODELS.build(dict(type='PoseurDecoder', **query_decoder))
        self.coarse_loss = MODELS.build(loss)
        self.decoder_loss = MODELS.build(loss)
        self.decoder = KEYPOINT_CODECS.build(decoder) if decoder is not None else None
        # checkpoints of the authors' release load as MMPose loads its own 0.x checkpoints
        self._register_load_state_dict_pre_hook(self._load_state_dict_pre_hook)

    def init_weights(self) -> None:
        """The release's effective initialisation: coarse weights xavier (gain 1) with
        PyTorch's default biases, level embedding N(0, 1); then ``init_cfg`` and every
        submodule's own ``init_weights`` (keypoint encoder, decoder, flows), each of which
        also starts as the release's does."""
        for layer in (self.coarse_coord, self.coarse_sigma):
            layer.reset_parameters()  # the default bias U(+-1/sqrt(C))
            nn.init.xavier_uniform_(layer.weight)
        nn.init.normal_(self.level_embed)
        super().init_weights()

    def check_feats(self, feats: Sequence[Tensor]) -> None:
        """Raise ValueError naming the fix unless ``feats`` holds ``num_feature_levels``
        maps of ``embed_dims`` channels, shaped (B, C, H_l, W_l)."""
        if len(feats) != self.num_feature_levels:
            raise ValueError(f'PoseurHead expects {self.num_feature_levels} feature levels, '
                             f'got {len(feats)}; make the neck output one map per level '
                             '(ChannelMapper num_outs) or change num_feature_levels')
        channels = [feat.shape[1] if feat.dim() == 4 else None for feat in feats]
        if any(c != self.embed_dims for c in channels):
            raise ValueError(f'PoseurHead expects (B, {self.embed_dims}, H, W) maps, got '
                             f'channels {channels}; set the neck out_channels to embed_dims')

    def check_dataset_meta(self, metainfo: dict, flip_test: bool) -> None:
        """Raise ValueError naming the fix when the dataset's keypoints do not fit the
        head: ``num_keypoints`` differs from ``num_joints``, or ``flip_test`` is on without
        ``flip_indices`` for every keypoint."""
        num_keypoints = metainfo.get('num_keypoints')
        if num_keypoints is not None and num_keypoints != self.num_joints:
            raise ValueError(f'the dataset has {num_keypoints} keypoints but PoseurHead was '
                             f'built with num_joints={self.num_joints}; set num_joints to the '
                             "dataset metainfo's num_keypoints")
        if flip_test and len(metainfo.get('flip_indices') or []) != self.num_joints:
            raise ValueError(f'flip test needs flip_indices for all {self.num_joints} '
                             'keypoints in the dataset metainfo; use a dataset config with '
                             'flip pairs (swap) for num_joints keypoints, or set '
                             'flip_test=False')

    def predict_coarse(self, feats: Tuple[Tensor]) -> Dict[str, Tensor]:
        """GAP + FC regression from the last level.

        Returns:
            dict: ``coords`` (B, K, 2) raw normalised coordinates and ``sigma_logits``
            (B, K, 2).
        """
        pooled = feats[-1].mean(dim=(2, 3))  # (B, C)
        batch = pooled.shape[0]
        coords = self.coarse_coord(F.normalize(pooled, dim=-1))
        sigma_logits = self.coarse_sigma(pooled)
        return dict(coords=coords.view(batch, self.num_joints, 2),
                    sigma_logits=sigma_logits.view(batch, self.num_joints, 2))

    def build_memory(self, feats: Tuple[Tensor]) -> Dict[str, Tensor]:
        """Flatten the levels and add the 2D sine encoding and the level embedding.

        Returns:
            dict: ``memory`` (B, N, C) and ``spatial_shapes`` (L, 2) long (H_l, W_l).
        """
        levels, encodings, shapes = [], [], []
        for level, feat in enumerate(feats):
            height, width = feat.shape[-2:]
            pos = grid_encoding(height, width, self.embed_dims, feat.device).to(feat.dtype)
            levels.append(feat.flatten(2).transpose(1, 2))  # (B, H*W, C) view
            encodings.append(pos + self.level_embed[level])  # (H*W, C)
            shapes.append((height, width))
        # one batch-sized allocation and one pass over it after the copy: the strided level
        # views are concatenated, then the (N, C) encodings added in place (per-level sums
        # before the concatenation wrote the memory twice: ~1.5x the time on a CPU)
        memory = torch.cat(levels, dim=1).add_(torch.cat(encodings))
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=feats[0].device)
        return dict(memory=memory, spatial_shapes=spatial_shapes)

    def add_noisy_groups(self, coarse: Tensor) -> Tensor:
        """Append ``num_noise_groups`` perturbed copies of the coarse keypoints.

        Args:
            coarse (Tensor): detached coarse keypoints, shape (B, K, 2).

        Returns:
            Tensor: reference points of all groups, real group first, shape (B, Q, 2).
        """
        batch = coarse.shape[0]
        noisy = coarse.repeat(1, self.num_noise_groups, 1)  # (B, G'*K, 2)
        num_noisy = self.noisy_points_per_group * self.num_noise_groups
        slots = torch.randperm(noisy.shape[1], device=coarse.device)[:num_noisy]
        noise = torch.randn(batch, num_noisy, 2, device=coarse.device, dtype=coarse.dtype)
        noise = (noise * self.noise_variance**0.5).clamp(-NOISE_CLIP, NOISE_CLIP)
        noisy[:, slots] = (noisy[:, slots] + noise).clamp(*NOISY_POINT_RANGE)
        return torch.cat((coarse, noisy), dim=1)

    def forward_all(self, feats: Tuple[Tensor],
                    last_layer_only: bool = False) -> Dict[str, object]:
        """Every output of the head, computed in float32 whatever the autocast state;
        noisy groups are added in training mode.

        Args:
            feats (Tuple[Tensor]): L feature maps, each (B, C, H_l, W_l).
            last_layer_only (bool): the decoder computes the last layer's outputs only
                (see :meth:`PoseurDecoder.forward`). Defaults to False.

        Returns:
            dict: ``coarse`` (see :meth:`predict_coarse`), ``layers`` (the decoder's
            :class:`DecoderOutputs`: ``coords`` and ``sigma_logits``, each
            (num_layers or 1, B, Q, 2)) and ``num_groups`` G.
        """
        self.check_feats(feats)
        # the whole head runs in float32 under autocast, as the release's transformer does
        # (@force_fp32): half-precision sigmas, offsets and coordinates lose ~3 digits,
        # half a pixel at 192 px; the backbone and neck keep the autocast dtype
        with torch.autocast(device_type=feats[0].device.type, enabled=False):
            feats = tuple(feat.float() for feat in feats)
            coarse = self.predict_coarse(feats)
            reference_points = coarse['coords'].detach()
            if self.training and self.num_noise_groups:
                reference_points = self.add_noisy_groups(reference_points)
            num_groups = reference_points.shape[1] // self.num_joints
            queries = self.keypoint_encoder(reference_points)
            layers = self.query_decoder(
                reference_points=reference_points, num_groups=num_groups,
                last_layer_only=last_layer_only, **queries, **self.build_memory(feats))
        return dict(coarse=coarse, layers=layers, num_groups=num_groups)

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        """Final prediction: last decoder layer, real queries.

        Args:
            feats (Tuple[Tensor]): L feature maps, each (B, C, H_l, W_l).

        Returns:
            Tensor: normalised coordinates and sigma logits, shape (B, K, 4).
        """
        layers = self.forward_all(feats, last_layer_only=True)['layers']
        return torch.cat((layers.coords[-1], layers.sigma_logits[-1]),
                         dim=-1)[:, :self.num_joints]

    def _coords_and_sigma(self, feats: Tuple[Tensor]) -> Tuple[Tensor, Tensor]:
        output = self.forward(feats)
        return output[..., :2], output[..., 2:].sigmoid()

    def predict(self,
                feats: Union[Tuple[Tensor], list],
                batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}) -> Predictions:
        """Keypoints in input-crop pixels with Laplace uncertainty scores.

        With ``test_cfg['flip_test']``, ``feats`` holds the features of the image and of
        its horizontal flip; the flipped prediction is mapped back with MMPose's
        ``flip_coordinates`` (``test_cfg['shift_coords']``, default True) and fused as
        ``flip_fusion`` says. A non-finite prediction is returned as it is, with a warning
        naming its sample (:meth:`warn_non_finite`).

        Returns:
            list[InstanceData]: per sample ``keypoints`` (1, K, 2) in crop pixels (the
            estimator maps them to the image), ``keypoint_scores`` (1, K) and
            ``keypoint_sigmas`` (1, K, 2): each keypoint's Laplace scale per axis in image
            pixels (the normalised sigma times the sample's ``input_scale``); with flip test
            the fused one of :meth:`fuse_flip`.
        """
        if test_cfg.get('flip_test', False):
            metainfo = batch_data_samples[0].metainfo
            self.check_dataset_meta(metainfo, flip_test=True)
            if not (isinstance(feats, (list, tuple)) and len(feats) == 2
                    and all(isinstance(f, (list, tuple)) for f in feats)):
                raise ValueError(
                    'with flip_test, PoseurHead.predict expects [feats, feats_flip]: the '
                    'feature maps of the images and of their horizontal flips, as '
                    "TopdownPoseEstimator passes them; got a plain tuple of "
                    f'{len(feats)} maps. Call it that way or set test_cfg flip_test=False')
            feats, feats_flip = feats
            coords, sigma, scores = self.coords_sigma_scores(
                feats, feats_flip, metainfo['flip_indices'], test_cfg.get('shift_coords', True))
        else:
            coords, sigma, scores = self.coords_sigma_scores(feats)
        self.warn_non_finite(coords, batch_data_samples)
        preds = self.decode(coords.unsqueeze(1))  # (B, 1, K, 2): one instance per sample
        for pred, sample_sigma, sample_scores, sample in zip(preds, to_numpy(sigma),
                                                             to_numpy(scores), batch_data_samples):
            pred.keypoint_scores = sample_scores[None]
            # normalised crop units -> image pixels: the crop spans input_scale (w, h) pixels
            # of the image (the estimator maps only the keypoints themselves)
            pred.keypoint_sigmas = (sample_sigma * sample.metainfo['input_scale'])[None]
        return preds

    def coords_sigma_scores(self,
                            feats: Tuple[Tensor],
                            feats_flip: Optional[Tuple[Tensor]] = None,
                            flip_indices: Optional[Sequence[int]] = None,
                            shift_coords: bool = True) -> Tuple[Tensor, Tensor, Tensor]:
        """Normalised keypoints, their sigmas and Laplace scores, fused with the flipped
        pass when ``feats_flip`` is given (what ``predict`` and the ONNX graph compute).

        The flipped pass is mapped back with MMPose's ``flip_coordinates`` (the codec's
        input size) and its keypoints swapped by ``flip_indices``, then fused as
        ``flip_fusion`` says.

        Args:
            feats (Tuple[Tensor]): L maps of the crops, each (B, C, H_l, W_l).
            feats_flip (Tuple[Tensor], optional): the same for the horizontally flipped
                crops. Defaults to None (one pass).
            flip_indices (Sequence[int], optional): each keypoint's mirror; needed with
                ``feats_flip``.
            shift_coords (bool): un-flip about pixel centres (x -> 1 - x - 1/W), as MMPose
                does. Defaults to True.

        Returns:
            tuple[Tensor, Tensor, Tensor]: coordinates (B, K, 2), sigmas (B, K, 2), both
            normalised by the crop size, and scores (B, K).
        """
        coords, sigma = self._coords_and_sigma(feats)
        if feats_flip is None:
            return coords, sigma, laplace_score(sigma, self.score_radius)
        coords_flip, sigma_flip = self._coords_and_sigma(feats_flip)
        coords_flip = flip_coordinates(coords_flip, flip_indices=flip_indices,
                                       shift_coords=shift_coords,
                                       input_size=self.decoder.input_size)
        return self.fuse_flip(coords, sigma, coords_flip, sigma_flip[:, flip_indices])

    @staticmethod
    def warn_non_finite(coords: Tensor, batch_data_samples: OptSampleList) -> None:
        """Warn, naming each sample, where a prediction is NaN or infinite (a crop with
        non-finite pixels, or non-finite weights), instead of returning it silently.

        Args:
            coords (Tensor): predicted coordinates, shape (B, K, 2).
            batch_data_samples (list[PoseDataSample]): the batch's samples.
        """
        for i in torch.nonzero(~coords.isfinite().all(dim=(1, 2))).flatten().tolist():
            meta = batch_data_samples[i].metainfo if batch_data_samples else {}
            name = meta.get('img_path') or meta.get('img_id') or f'batch index {i}'
            warnings.warn(f'PoseurHead predicted non-finite keypoints for sample {name} '
                          f'(id {meta.get("id")}): check its image and bbox for NaN/inf, '
                          'and the checkpoint for non-finite weights')

    def fuse_flip(self, coords: Tensor, sigma: Tensor, coords_flip: Tensor,
                  sigma_flip: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Fuse the plain and the un-flipped pass.

        ``'average'``: coordinates and sigmas averaged, the score of the mean sigma.
        ``'uncertainty'``: each keypoint's coordinates and sigmas weighted by its two
        scores to the 5th power, p^5 / (p^5 + p_flip^5), the scores averaged.

        Args:
            coords, coords_flip (Tensor): normalised coordinates, shape (B, K, 2).
            sigma, sigma_flip (Tensor): scales after the sigmoid, shape (B, K, 2).

        Returns:
            tuple[Tensor, Tensor, Tensor]: coordinates (B, K, 2), sigmas (B, K, 2) and
            scores (B, K).
        """
        if self.flip_fusion == 'average':
            fused_sigma = (sigma + sigma_flip) / 2
            return ((coords + coords_flip) / 2, fused_sigma,
                    laplace_score(fused_sigma, self.score_radius))
        scores = laplace_score(sigma, self.score_radius)
        scores_flip = laplace_score(sigma_flip, self.score_radius)
        # weights p^5 / (p^5 + p_flip^5), as a softmax of 5 log p for stability
        log_scores = torch.stack((scores, scores_flip)).clamp(min=1e-30).log()
        weights = (UNCERTAINTY_FUSION_POWER * log_scores).softmax(dim=0).unsqueeze(-1)
        return (weights[0] * coords + weights[1] * coords_flip,
                weights[0] * sigma + weights[1] * sigma_flip, (scores + scores_flip) / 2)

    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """RLE losses of the coarse output and of every decoder layer, and PCK.

        Returns:
            dict: ``loss_coarse``, ``loss_dec{i}`` for each decoder layer i, ``acc_pose``.
        """
        outputs = self.forward_all(feats)
        target = torch.cat([d.gt_instance_labels.keypoint_labels for d in batch_data_samples])
        weight = torch.cat([d.gt_instance_labels.keypoint_weights for d in batch_data_samples])
        self.check_dataset_meta(dict(num_keypoints=target.shape[1]), flip_test=False)
        coarse = outputs['coarse']
        losses = dict(loss_coarse=self.coarse_loss(coarse['coords'], coarse['sigma_logits'],
                                                   target, weight))
        groups = outputs['num_groups']
        group_target, group_weight = target.repeat(1, groups, 1), weight.repeat(1, groups)
        layers = outputs['layers']
        for i in range(layers.coords.shape[0]):
            losses[f'loss_dec{i}'] = self.decoder_loss(layers.coords[i], layers.sigma_logits[i],
                                                       group_target, group_weight)

        final = layers.coords[-1][:, :self.num_joints]
        _, avg_acc, _ = keypoint_pck_accuracy(
            pred=to_numpy(final),
            gt=to_numpy(target),
            mask=to_numpy(weight) > 0,
            thr=0.05,
            norm_factor=np.ones((final.size(0), 2), dtype=np.float32))
        losses['acc_pose'] = torch.tensor(avg_acc, device=target.device)
        return losses

    def _load_state_dict_pre_hook(self, state_dict: dict, prefix: str, *args,
                                  **kwargs) -> None:
        """Convert a head of the authors' release (MMPose 0.x ``PoseurHead``) to this
        head's names and shapes, in place, with :func:`convert_release_head`; poseur_mm
        state dicts are left alone. Registered in ``__init__``.

        The release's checkpoints carry module version 1 like poseur_mm's own, so the
        format is told by its key names, not by ``_metadata``.
        """
        if is_release_head(state_dict, prefix):
            convert_release_head(state_dict, prefix)
