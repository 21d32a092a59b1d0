from .emsda_attention import EMSDAttention
from .keypoint_encoder import KeypointEncoder
from .poseur_decoder import DecoderOutputs, PoseurDecoder, PoseurDecoderLayer

__all__ = [
    'DecoderOutputs', 'EMSDAttention', 'KeypointEncoder', 'PoseurDecoder', 'PoseurDecoderLayer'
]
