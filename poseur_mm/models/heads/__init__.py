from .poseur_head import PoseurHead

__all__ = ['PoseurHead']
