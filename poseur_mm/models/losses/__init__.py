from .poseur_rle_loss import PoseurRLELoss

__all__ = ['PoseurRLELoss']
