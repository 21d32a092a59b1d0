"""High-level inference APIs (MMPose's, extended with Poseur's outputs)."""
from .inferencer import PoseurInferencer

__all__ = ['PoseurInferencer']
