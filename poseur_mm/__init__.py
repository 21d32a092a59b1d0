"""poseur_mm: Poseur (ECCV 2022) as an MMPose 1.x plugin.

Importing the package checks the OpenMMLab versions and registers every module of the
plugin in MMPose's registries.
"""
from .version import __version__
from .compat import check_dependencies

check_dependencies()

from . import engine, models, visualization  # noqa: E402,F401  (registers the modules)
from . import checkpoint  # noqa: E402,F401  (torch.load allow-list for Runner checkpoints)
from .ops import emsda_sampling  # noqa: E402

__all__ = ['__version__', 'emsda_sampling']
