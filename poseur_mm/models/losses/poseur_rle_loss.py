"""Residual log-likelihood estimation (RLE) loss as Poseur trains with it."""
import math
from typing import Optional

import torch
from mmpose.models.utils.realnvp import RealNVP
from mmpose.registry import MODELS
from torch import Tensor, nn

SIGMA_EPS = 1e-9


@MODELS.register_module()
class PoseurRLELoss(nn.Module):
    """RLE loss with Poseur's residual term and per-query normalisation.

    For a prediction mu with scale sigma, target g and weight w (per keypoint)::

        z       = (mu - g) / sigma
        nf      = log(sigma) - flow.log_prob(z)
        logQ    = log(sigma * sqrt(2 pi)) + |g - mu| / (sqrt(2) * sigma + 1e-9)
        loss    = sum((nf + logQ) * w) / (B * Q)

    summed over both axes, ``flow.log_prob`` counted once per axis as in MMPose's
    ``RLELoss``. The loss owns its RealNVP flow (MMPose's: 6 affine couplings, 2-64-64-2
    nets) with a Gaussian prior N(``prior_mean``, I); Poseur builds one such loss for the
    coarse output and one shared by all decoder layers. Everything runs in float32, also
    under autocast, because the flow's exp and the logs overflow in half precision.

    `Poseur <https://arxiv.org/abs/2201.07412>`_,
    `RLE <https://arxiv.org/abs/2107.11291>`_.

    Note:
        B: batch size, Q: queries (keypoints, times query groups while training).

    Args:
        prior_mean (float): mean of the flow's prior on both axes. Poseur's release uses
            0.5 (MMPose's ``RLELoss`` uses 0). Defaults to 0.5.
        loss_weight (float): factor on the loss. Defaults to 1.0.
    """

    def __init__(self, prior_mean: float = 0.5, loss_weight: float = 1.0):
        super().__init__()
        self.flow = RealNVP()
        self.flow.loc.fill_(prior_mean)
        self.loss_weight = loss_weight

    def init_weights(self) -> None:
        """PyTorch's default init for the flow's linears, as the release's flows keep
        (their own xavier-gain-0.01 init is never called there)."""
        for module in self.flow.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def log_prob(self, z: Tensor) -> Tensor:
        """Log density of the flow with prior N(``prior_mean``, I), shape (M, 2) -> (M,).

        Written out instead of ``RealNVP.log_prob``, whose ``MultivariateNormal`` rejects
        non-finite input with a ValueError: a NaN loss must reach the training loop, where
        :class:`NonFiniteLossHook` reports it with the iteration and the loss term.
        """
        latent, log_det = self.flow.backward_p(z)
        squared = ((latent - self.flow.loc)**2).sum(dim=-1)
        return -0.5 * squared - math.log(2 * math.pi) + log_det

    def forward(self,
                pred: Tensor,
                sigma_logits: Tensor,
                target: Tensor,
                target_weight: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            pred (Tensor): predicted normalised coordinates, shape (B, Q, 2).
            sigma_logits (Tensor): predicted scales before the sigmoid, shape (B, Q, 2).
            target (Tensor): normalised ground truth, shape (B, Q, 2).
            target_weight (Tensor, optional): per-keypoint weight (visibility), shape (B, Q).
                Defaults to all ones.

        Returns:
            Tensor: the scalar loss.
        """
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred, target = pred.float(), target.float()
            # sigmoid underflows to 0 for logits below about -104; log(0) and x / 0 would
            # turn even zero-weight keypoints into NaN (inf * 0), so floor sigma.
            sigma = sigma_logits.float().sigmoid().clamp(min=SIGMA_EPS)
            batch, num_queries, _ = pred.shape
            error = pred - target
            log_phi = self.log_prob((error / sigma).reshape(-1, 2))
            log_phi = log_phi.view(batch, num_queries, 1)
            nf_loss = torch.log(sigma) - log_phi
            residual = (torch.log(sigma * math.sqrt(2 * math.pi)) +
                        error.abs() / (math.sqrt(2) * sigma + SIGMA_EPS))
            loss = nf_loss + residual  # (B, Q, 2)
            if target_weight is not None:
                loss = loss * target_weight.float().unsqueeze(-1)
            return loss.sum() / (batch * num_queries) * self.loss_weight
