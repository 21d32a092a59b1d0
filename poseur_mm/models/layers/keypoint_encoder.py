"""Keypoint encoder: turns coarse keypoints into decoder queries."""
import torch
from mmengine.model import BaseModule
from mmpose.registry import MODELS
from torch import Tensor, nn

from .positional_encoding import keypoint_encoding


@MODELS.register_module()
class KeypointEncoder(BaseModule):
    """Query content from keypoint positions, query position from keypoint identity.

    content = LayerNorm(Linear([PE(ref), PE(clip(ref, 0, 1))])), with PE the sine encoding
    of :func:`keypoint_encoding` (C channels each, so 2C -> C); the positional part is a
    learned embedding per keypoint type, tiled over query groups.

    Note:
        B: batch size, K: keypoints, G: query groups, Q = G * K, C: ``embed_dims``.

    Args:
        num_joints (int): keypoint types K.
        embed_dims (int): query channels C. Defaults to 256.
    """

    def __init__(self, num_joints: int, embed_dims: int = 256):
        super().__init__()
        self.embed_dims = embed_dims
        self.content_proj = nn.Linear(2 * embed_dims, embed_dims)
        self.content_norm = nn.LayerNorm(embed_dims)
        self.class_embed = nn.Embedding(num_joints, embed_dims)

    def init_weights(self) -> None:
        """The release's effective initialisation: xavier for the content projection
        (default bias) and for the class embedding, which PyTorch would draw N(0, 1)."""
        nn.init.xavier_uniform_(self.content_proj.weight)
        nn.init.xavier_uniform_(self.class_embed.weight)

    def forward(self, reference_points: Tensor) -> dict:
        """
        Args:
            reference_points (Tensor): normalised (x, y) of every query, groups of K
                consecutive queries, shape (B, Q, 2).

        Returns:
            dict: ``query`` content and ``query_pos`` positional part, both (B, Q, C).
        """
        batch, num_queries, _ = reference_points.shape
        encoding = (keypoint_encoding(reference_points, self.embed_dims),
                    keypoint_encoding(reference_points.clamp(0, 1), self.embed_dims))
        query = self.content_norm(self.content_proj(torch.cat(encoding, dim=-1)))
        num_groups = num_queries // self.class_embed.num_embeddings
        query_pos = self.class_embed.weight.repeat(num_groups, 1).expand(batch, -1, -1)
        return dict(query=query, query_pos=query_pos)
