"""Poseur's query decoder: post-norm layers with iterative reference refinement."""
from typing import List, NamedTuple, Optional

import torch
from mmdet.models.layers.transformer import inverse_sigmoid
from mmengine.model import BaseModule
from mmpose.registry import MODELS
from torch import Tensor, nn

from .emsda_attention import EMSDAttention


class DecoderOutputs(NamedTuple):
    """What :class:`PoseurDecoder` returns; M: decoder layers, B: batch, Q: queries."""
    coords: Tensor  # normalised (x, y) of every layer, (M, B, Q, 2)
    sigma_logits: Tensor  # sigma logits of every layer, (M, B, Q, 2)


def mlp(in_dims: int, hidden_dims: int, out_dims: int, num_layers: int,
        activation: bool) -> nn.Sequential:
    """``num_layers`` linears in_dims -> hidden_dims ... -> out_dims, ReLU between them
    when ``activation``."""
    dims = [in_dims] + [hidden_dims] * (num_layers - 1) + [out_dims]
    layers: List[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if activation and i < num_layers - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def identical_copies(branches: List[nn.Sequential],
                     last_gain: Optional[float] = None) -> None:
    """PyTorch's default init for the linears of ``branches[0]`` (with the last weight
    xavier at ``last_gain`` when given), copied into every other branch."""
    first = branches[0]
    for layer in first:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()
    if last_gain is not None:
        nn.init.xavier_uniform_(first[-1].weight, gain=last_gain)
    for other in branches[1:]:
        other.load_state_dict(first.state_dict())


class PoseurDecoderLayer(BaseModule):
    """Post-norm layer: group-wise self-attention, EMSDA cross-attention, FFN.

    Each sub-block is ``x = LayerNorm(x + Dropout(block(x)))``. Self-attention runs only
    inside each query group: groups are folded into the batch dimension.

    Note:
        - B: batch size, G: query groups, K: queries per group, Q = G * K
        - N: memory tokens, C: ``embed_dims``, L: levels

    Args:
        embed_dims (int): channels C. Defaults to 256.
        num_heads (int): heads of both attentions. Defaults to 8.
        num_levels (int): memory levels L. Defaults to 4.
        num_points (int): EMSDA sampling points per head and level. Defaults to 4.
        ffn_dims (int): hidden channels of the FFN. Defaults to 1024.
        dropout (float): dropout in attention, on residual branches and in the FFN.
            Defaults to 0.1.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_levels: int = 4,
                 num_points: int = 4,
                 ffn_dims: int = 1024,
                 dropout: float = 0.1):
        super().__init__()
        if embed_dims % num_heads:
            # checked here: nn.MultiheadAttention, built first, only asserts
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads}); change one of them')
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = EMSDAttention(embed_dims, num_heads, num_levels, num_points, dropout)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, ffn_dims), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(ffn_dims, embed_dims))
        self.dropout = nn.Dropout(dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))
        self.embed_dims = embed_dims

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                reference_points: Tensor, spatial_shapes: Tensor, num_groups: int) -> Tensor:
        """
        Args:
            query (Tensor): query content, shape (B, Q, C).
            query_pos (Tensor): query positional part, shape (B, Q, C).
            memory (Tensor): the decoder memory, shape (B, N, C).
            reference_points (Tensor): normalised (x, y), shape (B, Q, 2).
            spatial_shapes (Tensor): (H_l, W_l) per level, long, shape (L, 2).
            num_groups (int): query groups G that must not attend to each other.

        Returns:
            Tensor: updated queries, shape (B, Q, C).
        """
        batch, num_queries, channels = query.shape
        grouped = (batch * num_groups, num_queries // num_groups, channels)  # (B*G, K, C)
        q = (query + query_pos).reshape(grouped)
        attn, _ = self.self_attn(q, q, query.reshape(grouped), need_weights=False)
        query = self.norms[0](query + self.dropout(attn.reshape(query.shape)))
        cross = self.cross_attn(query, query_pos, memory, reference_points, spatial_shapes)
        query = self.norms[1](query + cross)
        return self.norms[2](query + self.dropout(self.ffn(query)))


@MODELS.register_module()
class PoseurDecoder(BaseModule):
    """Stack of :class:`PoseurDecoderLayer` refining keypoint reference points.

    After layer l, with h_l its output queries::

        ref_{l+1} = sigmoid(delta_l(h_l) + inverse_sigmoid(ref_l))    (fed to layer l + 1)
        coord_l   = ref_{l+1} + out_delta_l(h_l)                      (supervised, not fed back)
        sigma_l   = sigma_branch_l(h_l)                               (logits)

    Gradients flow through the whole reference chain. Every layer has its own branches:
    delta and out_delta are MLPs C -> C -> C -> 2 with ReLU; sigma is three linears with
    no activation. :class:`PoseurHead` runs the decoder in float32 also under autocast.

    Args:
        num_layers (int): decoder layers. Defaults to 6.
        layer_cfg (dict, optional): keyword arguments of :class:`PoseurDecoderLayer`.
            Defaults to the layer's own defaults.
    """

    def __init__(self, num_layers: int = 6, layer_cfg: Optional[dict] = None):
        super().__init__()
        self.layers = nn.ModuleList(
            PoseurDecoderLayer(**(layer_cfg or {})) for _ in range(num_layers))
        self.embed_dims = embed_dims = self.layers[0].embed_dims
        self.delta_branches = nn.ModuleList(
            mlp(embed_dims, embed_dims, 2, 3, activation=True) for _ in range(num_layers))
        self.out_delta_branches = nn.ModuleList(
            mlp(embed_dims, embed_dims, 2, 3, activation=True) for _ in range(num_layers))
        self.sigma_branches = nn.ModuleList(
            mlp(embed_dims, embed_dims, 2, 3, activation=False) for _ in range(num_layers))

    def init_weights(self) -> None:
        """The release's effective initialisation (it builds its branches by deep-copying
        one module, and its intended small inits of the coordinate branches never run).

        - Layers: xavier for every matrix (self-attention, FFN), default FFN biases, then
          each EMSDA's own :meth:`EMSDAttention.init_weights`.
        - Delta and out_delta branches: PyTorch's default init, one draw copied to all
          2 * num_layers branches. The untrained decoder therefore does *not* return the
          coarse keypoints: its first output sits ~0.1 (normalised) away from them.
        - Sigma branches: PyTorch's default init, the last linear's weight xavier with
          gain 0.01 (default bias), one draw copied to all num_layers branches. The small
          last layer keeps the initial sigma logits within ~0.1 of each other; at xavier
          gain 1 they span several units, and the RLE loss then drives the sigmoid into
          saturation within a few iterations (see ``docs/recipe.md``).
        """
        for param in self.layers.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        for module in self.layers.modules():
            if isinstance(module, EMSDAttention):
                module.init_weights()
        identical_copies([*self.delta_branches, *self.out_delta_branches])
        identical_copies(list(self.sigma_branches), last_gain=0.01)

    def forward(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                reference_points: Tensor, spatial_shapes: Tensor, num_groups: int,
                last_layer_only: bool = False) -> DecoderOutputs:
        """
        Note:
            B: batch size, Q: queries (all groups), N: memory tokens, C: channels.

        Args:
            query (Tensor): initial query content, shape (B, Q, C).
            query_pos (Tensor): query positional part, shape (B, Q, C).
            memory (Tensor): the decoder memory, shape (B, N, C).
            reference_points (Tensor): initial normalised (x, y), shape (B, Q, 2).
            spatial_shapes (Tensor): (H_l, W_l) per level, long, shape (L, 2).
            num_groups (int): query groups that must not attend to each other.
            last_layer_only (bool): compute the outputs (out_delta and sigma branches) of
                the last layer only, as prediction needs: 2 * (num_layers - 1) branches
                fewer, which an exported graph would otherwise keep. Defaults to False.

        Returns:
            DecoderOutputs: ``coords`` and ``sigma_logits`` of every layer (of the last
            one with ``last_layer_only``), stacked, each (num_layers or 1, B, Q, 2).
        """
        coords, sigma_logits = [], []
        ref = reference_points
        last = len(self.layers) - 1
        for index, (layer, delta, out_delta, sigma) in enumerate(
                zip(self.layers, self.delta_branches, self.out_delta_branches,
                    self.sigma_branches)):
            query = layer(query, query_pos, memory, ref, spatial_shapes, num_groups)
            ref = torch.sigmoid(delta(query) + inverse_sigmoid(ref))
            if index == last or not last_layer_only:
                coords.append(ref + out_delta(query))
                sigma_logits.append(sigma(query))
        return DecoderOutputs(torch.stack(coords), torch.stack(sigma_logits))
