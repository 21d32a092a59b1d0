"""Visualisation of Poseur's outputs."""
from .local_visualizer import PoseurLocalVisualizer

__all__ = ['PoseurLocalVisualizer']
