"""Checkpoints of the authors' Poseur release (an MMPose 0.28 fork) in poseur_mm's names.

The release stores its head under ``keypoint_head.`` with the module names of its own
transformer (mmcv 1.x attention and FFN wrappers, ``Linear_with_norm``, ``nn.Embedding``
tables); MMPose's ``BasePoseEstimator`` already renames ``keypoint_head.`` to ``head.``.
:func:`convert_release_head` maps the rest: the renames of :data:`RELEASE_HEAD_RENAMES`, the
EMSDA per-head projection table (H*C, C/H) viewed as (H, C, C/H) (row ``h*C + c`` is input
channel c of head h, a reshape without transpose), and the flows' prior buffers, which the
release keeps outside the state dict. ``PoseurHead``'s load pre-hook and
``tools/model_converters/poseur_release_to_mmpose.py`` both call it.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional

import torch

# The release's module names under the head (first match wins) -> poseur_mm's.
RELEASE_HEAD_RENAMES = tuple((re.compile(pattern), repl) for pattern, repl in (
    # Linear_with_norm wraps an nn.Linear as `.linear`
    (r'transformer\.fc_coord\.linear\.', 'coarse_coord.'),
    (r'transformer\.fc_sigma\.linear\.', 'coarse_sigma.'),
    (r'transformer\.level_embeds$', 'level_embed'),
    (r'transformer\.pos_trans\.', 'keypoint_encoder.content_proj.'),
    (r'transformer\.pos_trans_norm\.', 'keypoint_encoder.content_norm.'),
    (r'transformer\.pos_embed\.', 'keypoint_encoder.class_embed.'),
    # mmcv's MultiheadAttention wraps nn.MultiheadAttention as `.attn`
    (r'transformer\.decoder\.layers\.(\d+)\.attentions\.0\.attn\.',
     r'query_decoder.layers.\1.self_attn.'),
    # the EMSDA's per-head projection: nn.Embedding tables used as weight and bias
    (r'transformer\.decoder\.layers\.(\d+)\.attentions\.1\.value_proj_weight\.weight$',
     r'query_decoder.layers.\1.cross_attn.head_proj_weight'),
    (r'transformer\.decoder\.layers\.(\d+)\.attentions\.1\.value_proj_bias\.weight$',
     r'query_decoder.layers.\1.cross_attn.head_proj_bias'),
    (r'transformer\.decoder\.layers\.(\d+)\.attentions\.1\.',
     r'query_decoder.layers.\1.cross_attn.'),
    # mmcv's FFN: Sequential(Sequential(Linear, act, Dropout), Linear, Dropout)
    (r'transformer\.decoder\.layers\.(\d+)\.ffns\.0\.layers\.0\.0\.',
     r'query_decoder.layers.\1.ffn.0.'),
    (r'transformer\.decoder\.layers\.(\d+)\.ffns\.0\.layers\.1\.',
     r'query_decoder.layers.\1.ffn.3.'),
    (r'transformer\.decoder\.layers\.(\d+)\.norms\.', r'query_decoder.layers.\1.norms.'),
    (r'fc_coord_branches\.', 'query_decoder.delta_branches.'),
    (r'fc_coord_output_branches\.', 'query_decoder.out_delta_branches.'),
    (r'fc_sigma_branches\.(\d+)\.2\.linear\.', r'query_decoder.sigma_branches.\1.2.'),
    (r'fc_sigma_branches\.', 'query_decoder.sigma_branches.'),
    (r'enc_flow\.', 'coarse_loss.flow.'),
    (r'dec_flow\.', 'decoder_loss.flow.'),
))
# Top-level names of the release's head; poseur_mm's head has none of them.
RELEASE_HEAD_ROOTS = ('transformer.', 'enc_flow.', 'dec_flow.', 'fc_coord_branches.',
                      'fc_coord_output_branches.', 'fc_sigma_branches.')
# The release's flows have the prior N(0.5, I) as a torch.distributions object, not state.
RELEASE_FLOW_PRIOR_MEAN = 0.5
FLOWS = ('coarse_loss.flow.', 'decoder_loss.flow.')
HEAD_PROJ_WEIGHT = 'cross_attn.head_proj_weight'


def is_release_head(state_dict: Mapping[str, torch.Tensor], prefix: str) -> bool:
    """Whether the head keys under ``prefix`` are in the release's format."""
    roots = tuple(prefix + root for root in RELEASE_HEAD_ROOTS)
    return any(key.startswith(roots) for key in state_dict)


def convert_release_head(state_dict: Dict[str, torch.Tensor], prefix: str) -> List[str]:
    """Convert the release's head keys under ``prefix`` to poseur_mm's, in place.

    Args:
        state_dict (dict): a state dict holding the head under ``prefix`` (e.g. ``'head.'``).
        prefix (str): the head's prefix, with its trailing dot.

    Returns:
        list[str]: head keys that are not release names (left as they are).

    Raises:
        ValueError: a per-head projection table whose shape is not (H*C, C/H) for the
            H heads of its bias table (H, C/H).
    """
    unknown = []
    for key in [k for k in state_dict if k.startswith(prefix)]:
        name = key[len(prefix):]
        for pattern, repl in RELEASE_HEAD_RENAMES:
            match = pattern.match(name)
            if match:
                new_name = match.expand(repl) + name[match.end():]
                state_dict[prefix + new_name] = state_dict.pop(key)
                break
        else:
            unknown.append(key)
    for key in [k for k in state_dict if k.startswith(prefix) and k.endswith(HEAD_PROJ_WEIGHT)]:
        bias = state_dict.get(key[:-len('weight')] + 'bias')
        state_dict[key] = _per_head_weight(state_dict[key], bias, key)
    for flow in FLOWS:
        mask = state_dict.get(prefix + flow + 'mask')
        if mask is not None:
            state_dict.setdefault(prefix + flow + 'loc',
                                  mask.new_full((2, ), RELEASE_FLOW_PRIOR_MEAN))
            state_dict.setdefault(prefix + flow + 'cov', torch.eye(2, dtype=mask.dtype))
    return unknown


def _per_head_weight(table: torch.Tensor, bias: Optional[torch.Tensor],
                     key: str) -> torch.Tensor:
    """(H*C, C/H) table -> (H, C, C/H); H from the bias table (H, C/H)."""
    if bias is None:
        raise ValueError(f'{key} has no value_proj_bias table beside it; the file is damaged '
                         'or not a Poseur release checkpoint')
    heads, head_dims = bias.shape
    embed_dims = heads * head_dims
    if tuple(table.shape) != (heads * embed_dims, head_dims):
        raise ValueError(
            f'{key}: the per-head projection table has shape {tuple(table.shape)}, expected '
            f'({heads * embed_dims}, {head_dims}) for {heads} heads of {head_dims} channels '
            'as its bias table says; the file is damaged or not a Poseur release checkpoint')
    return table.reshape(heads, embed_dims, head_dims)


def convert_release_state_dict(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict:
    """The release detector's ``state_dict`` in poseur_mm's names (``keypoint_head.`` ->
    ``head.`` and :func:`convert_release_head`), without the release's ``_metadata``.

    Raises:
        ValueError: ``state_dict`` is not a release Poseur detector's, or holds head keys
            that no published Poseur setting has.
    """
    if not is_release_head(state_dict, 'keypoint_head.'):
        roots = sorted({key.split('.')[0] for key in state_dict})
        raise ValueError(
            'not a checkpoint of the Poseur release: its state_dict has no '
            f'keypoint_head.transformer.* keys (top-level names: {roots}). An MMPose 1.x / '
            'poseur_mm checkpoint needs no conversion: load it with init_model or load_from')
    converted = OrderedDict(
        (re.sub(r'^keypoint_head\.', 'head.', key), value) for key, value in state_dict.items())
    unknown = convert_release_head(converted, 'head.')
    if unknown:
        raise ValueError(
            f'{len(unknown)} head keys are not names of the Poseur release, first '
            f'{unknown[0].replace("head.", "keypoint_head.", 1)}: the checkpoint comes from '
            'another head (e.g. the release\'s HRFormer/ViT variants or a modified model), '
            'which poseur_mm does not implement')
    return converted
