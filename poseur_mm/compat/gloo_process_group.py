"""Imported from a config's ``custom_imports`` to train on CPUs with torchrun; see
:mod:`poseur_mm.compat.cpu_distributed`."""
from .cpu_distributed import init_gloo_process_group

init_gloo_process_group()
