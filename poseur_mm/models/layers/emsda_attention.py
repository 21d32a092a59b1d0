"""Efficient multi-scale deformable attention (EMSDA), Poseur's cross-attention."""
import math

import torch
from mmengine.model import BaseModule
from mmpose.registry import MODELS
from torch import Tensor, nn

from poseur_mm.ops import emsda_sampling


@MODELS.register_module()
class EMSDAttention(BaseModule):
    """Multi-scale deformable attention that projects samples, not the memory.

    Deformable-DETR projects all N memory tokens to values in every layer. EMSDA instead
    lets each head sample the shared, unprojected memory at its own points and projects
    only the weighted sum of its samples (per head, C -> C / H), which is far cheaper
    when there are few queries (17 keypoints against ~4000 memory tokens).

    Initialisation (the release's effective one, see :meth:`init_weights`): xavier
    weights everywhere, offset biases on a radial grid (head h points along angle
    2*pi*h/H, the p-th point at distance p + 1 pixels), zero attention and output biases.

    Note:
        - B: batch size, Q: queries, N: memory tokens, C: ``embed_dims``
        - H: ``num_heads``, L: ``num_levels``, P: ``num_points``

    Args:
        embed_dims (int): channels C of queries and memory. Defaults to 256.
        num_heads (int): attention heads H; must divide ``embed_dims``. Defaults to 8.
        num_levels (int): feature levels L. Defaults to 4.
        num_points (int): sampling points P per head and level. Defaults to 4.
        dropout (float): dropout on the output. Defaults to 0.1.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_levels: int = 4,
                 num_points: int = 4,
                 dropout: float = 0.1):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads}); change one of them')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        head_dims = embed_dims // num_heads
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.head_proj_weight = nn.Parameter(torch.empty(num_heads, embed_dims, head_dims))
        self.head_proj_bias = nn.Parameter(torch.zeros(num_heads, head_dims))
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.init_weights()

    def init_weights(self) -> None:
        """The release's effective initialisation. Its attention first runs
        Deformable-DETR's init (zero offset and attention-weight matrices, radial-grid
        offset biases, zero biases), then the transformer's xavier pass overwrites every
        matrix. So: xavier for the offset, attention-weight and output matrices; the
        per-head projections xavier as the release's (H * C, C / H) table and their bias
        xavier as its (H, C / H) table (the release stores both as embeddings); the
        radial grid for the offset biases; zero attention and output biases."""
        nn.init.xavier_uniform_(self.sampling_offsets.weight)
        angles = torch.arange(self.num_heads, dtype=torch.float32) * (2 * math.pi / self.num_heads)
        directions = torch.stack((angles.cos(), angles.sin()), dim=-1)
        directions = directions / directions.abs().max(-1, keepdim=True).values
        # (H, 1, 1, 2) * (P,) distances -> (H, L, P, 2)
        distances = torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        grid = directions.view(self.num_heads, 1, 1, 2) * distances
        grid = grid.expand(self.num_heads, self.num_levels, self.num_points, 2)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.xavier_uniform_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        # (H, C, C / H) viewed as the release's table: row h * C + c is input channel c of
        # head h, so the fans are C / H and H * C
        table = self.head_proj_weight.data.view(self.num_heads * self.embed_dims, -1)
        nn.init.xavier_uniform_(table)
        nn.init.xavier_uniform_(self.head_proj_bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: Tensor, query_pos: Tensor, value: Tensor,
                reference_points: Tensor, spatial_shapes: Tensor) -> Tensor:
        """Attend from every query to the memory around its reference point.

        Args:
            query (Tensor): query content, shape (B, Q, C).
            query_pos (Tensor): query positional part, added before predicting offsets and
                weights, shape (B, Q, C).
            value (Tensor): the memory, levels flattened in order, shape (B, N, C).
            reference_points (Tensor): normalised (x, y) per query, shared by all levels,
                shape (B, Q, 2).
            spatial_shapes (Tensor): (H_l, W_l) per level, long, shape (L, 2).

        Returns:
            Tensor: the attention output before the residual, shape (B, Q, C).
        """
        batch, num_queries, _ = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        query = query + query_pos
        offsets = self.sampling_offsets(query).view(batch, num_queries, heads, levels, points, 2)
        weights = self.attention_weights(query).view(batch, num_queries, heads, levels * points)
        weights = weights.softmax(-1).view(batch, num_queries, heads, levels, points)
        # offsets are in pixels of each level: divide by (W_l, H_l) -> (1, 1, 1, L, 1, 2)
        normalizer = spatial_shapes.flip(-1).to(offsets.dtype).view(1, 1, 1, levels, 1, 2)
        locations = reference_points.view(batch, num_queries, 1, 1, 1, 2) + offsets / normalizer
        sampled = emsda_sampling(value, spatial_shapes, locations, weights)  # (B, Q, H, C)
        # a batched matmul over heads, not einsum: onnxruntime's Einsum kernel took ~3x
        # as long as its MatMul here, and PyTorch gives the same bits either way
        projected = torch.matmul(sampled.transpose(1, 2), self.head_proj_weight).transpose(1, 2)
        projected = projected + self.head_proj_bias  # (B, Q, H, C / H)
        output = self.output_proj(projected.reshape(batch, num_queries, self.embed_dims))
        return self.dropout(output)
