"""Fill a ChannelMapper neck's ``in_channels`` from the backbone it follows.

Poseur needs one feature map per level, mapped to ``embed_dims`` channels by MMPose's
``ChannelMapper``. Its ``in_channels`` depend on the backbone and on which stages it outputs;
:func:`backbone_out_channels` reads them off the backbone itself instead of a table, so any
MMPose (or MMDetection-scoped) backbone config works.
"""
import copy
from typing import List, Sequence

import torch
from mmpose.registry import MODELS


def backbone_out_channels(backbone: dict, input_size: Sequence[int] = (64, 64)) -> List[int]:
    """Channels of every feature map a backbone config produces.

    The backbone is built without its ``init_cfg`` (no pretrained weights are downloaded)
    and run once in eval mode on a zero image.

    Args:
        backbone (dict): backbone config, e.g. ``cfg.model.backbone``; a ``_scope_`` key
            (``'mmdet'`` for CSPNeXt) is honoured.
        input_size (Sequence[int]): (w, h) of the probe image; large enough for the
            backbone's total stride. Defaults to (64, 64).

    Returns:
        list[int]: channels of each output, in the backbone's output order.
    """
    cfg = copy.deepcopy(dict(backbone))
    cfg.pop('init_cfg', None)
    model = MODELS.build(cfg)
    model.eval()  # not chained: some backbones' train() returns None (HRNet)
    width, height = input_size
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, height, width))
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs, )
    return [int(feat.shape[1]) for feat in outputs]


def channel_mapper(backbone: dict, out_channels: int = 256) -> dict:
    """Poseur's neck for a backbone config: per level a 1x1 conv and GroupNorm(32).

    Args:
        backbone (dict): backbone config that outputs every level Poseur should see.
        out_channels (int): channels of each level, the head's ``embed_dims``.
            Defaults to 256.

    Returns:
        dict: a ``ChannelMapper`` config.
    """
    in_channels = backbone_out_channels(backbone)
    return dict(
        type='ChannelMapper',
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=1,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=len(in_channels))
