"""Small pure helpers shared by the model code."""
import torch
from torch import Tensor


def laplace_score(sigma: Tensor, radius: float) -> Tensor:
    """Poseur's uncertainty score: mass of a Laplace(0, sigma) within +-radius, per axis,
    multiplied over x and y: ``prod (1 - exp(-radius / sigma))``.

    Args:
        sigma (Tensor): Laplace scales (after the sigmoid), shape (*, 2).
        radius (float): the radius a, same units as sigma.

    Returns:
        Tensor: scores in [0, 1], float32, shape (*).
    """
    return (1 - torch.exp(-radius / sigma.float())).prod(dim=-1)
