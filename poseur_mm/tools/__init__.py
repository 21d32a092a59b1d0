"""Command-line tools: ``python -m poseur_mm.tools.benchmark`` (cost table of whole models),
``python -m poseur_mm.tools.emsda_benchmark`` (the EMSDA op against its references) and
``python -m poseur_mm.tools.accuracy_study`` (accuracy against input size)."""
import os.path as osp

# the checkout the plugin is installed from (editable): its configs/ and projects/
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
