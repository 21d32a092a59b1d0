from .emsda import emsda_sampling

__all__ = ['emsda_sampling']
