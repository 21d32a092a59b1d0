from .emsda_attention import EMSDAttention
from .keypoint_encoder import KeypointEncoder
from .poseur_decoder import PoseurDecoder, PoseurDecoderLayer

__all__ = ['EMSDAttention', 'KeypointEncoder', 'PoseurDecoder', 'PoseurDecoderLayer']
