"""Command-line tools: ``python -m poseur_mm.tools.benchmark`` (cost table of whole models)
and ``python -m poseur_mm.tools.emsda_benchmark`` (the EMSDA op against its references)."""
