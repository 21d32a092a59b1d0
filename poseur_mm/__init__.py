"""poseur_mm: Poseur (ECCV 2022) as an MMPose 1.x plugin.

Importing the package checks the OpenMMLab versions, fills the upstream gaps of
:mod:`poseur_mm.compat` and registers every module of the plugin in MMPose's registries.
"""
from .version import __version__
from . import compat  # noqa: E402,F401  (first: the version check)
from . import engine, models, visualization  # noqa: E402,F401  (registers the modules)
from .ops import emsda_sampling  # noqa: E402

__all__ = ['__version__', 'emsda_sampling']
