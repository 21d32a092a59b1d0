from .heads import PoseurHead
from .layers import EMSDAttention, KeypointEncoder, PoseurDecoder
from .losses import PoseurRLELoss

__all__ = ['PoseurHead', 'EMSDAttention', 'KeypointEncoder', 'PoseurDecoder', 'PoseurRLELoss']
