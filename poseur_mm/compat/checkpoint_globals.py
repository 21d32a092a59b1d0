"""Let ``torch.load(weights_only=True)`` read the checkpoints MMEngine's Runner saves (can go
when MMEngine loads its own checkpoints with ``weights_only`` and an allow-list).

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7 calls
``torch.load`` without the argument: ``load_from``, ``mim test`` and ``--resume`` then stop at
"Unsupported global" on MMEngine's own checkpoints. Besides tensors, a Runner checkpoint holds
NumPy arrays and scalars (the dataset metainfo, the best metric, the log history) and the
``HistoryBuffer`` objects of the message hub. Importing ``poseur_mm`` allow-lists exactly these
types, so such checkpoints load while any other global (``os.system``, arbitrary classes) is
still refused. The Poseur release's checkpoints (MMPose 0.x under NumPy 1.x) need one more
name: NumPy 1's ``numpy.core.multiarray.scalar``, an alias of the same allowed constructor.
"""
import pickle

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

# The statistics MMEngine registers on every HistoryBuffer. A pickled buffer stores them as
# ``getattr(HistoryBuffer, name)`` (pickle protocol 2, torch.save's default).
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_statistic(owner: type, name: str):
    """Stand-in for ``builtins.getattr`` in a ``weights_only`` load: returns only the
    statistics methods of :class:`HistoryBuffer`, since a general ``getattr`` would reach any
    attribute of every allow-listed object.

    Args:
        owner (type): the object the pickle reads the attribute from.
        name (str): the attribute.

    Returns:
        Callable: ``getattr(HistoryBuffer, name)``.

    Raises:
        pickle.UnpicklingError: for any other object or attribute.
    """
    if owner is not HistoryBuffer or name not in HISTORY_BUFFER_STATISTICS:
        raise pickle.UnpicklingError(
            f'weights_only load refuses getattr({owner!r}, {name!r}): poseur_mm allow-lists '
            f'getattr only for HistoryBuffer statistics {HISTORY_BUFFER_STATISTICS}. Load a '
            f'file you trust with torch.load(..., weights_only=False) instead.')
    return getattr(owner, name)


# The callables NumPy's own pickles name (taken from NumPy so the module path matches).
_NUMPY_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy._core.multiarray._reconstruct
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]  # numpy._core.multiarray.scalar

MMENGINE_CHECKPOINT_GLOBALS = [
    HistoryBuffer,  # message_hub.log_scalars
    (history_buffer_statistic, 'builtins.getattr'),  # HistoryBuffer.statistics_methods
    _NUMPY_RECONSTRUCT, np.ndarray,  # arrays: dataset_meta colours/sigmas, log history
    _NUMPY_SCALAR,  # scalars: best_score, eta
    np.dtype,
    # the dtypes those arrays and scalars have; unpickling sets the state of their dtype
    np.dtypes.UInt8DType, np.dtypes.Int64DType, np.dtypes.Float32DType,
    np.dtypes.Float64DType,
]

# Checkpoints of the authors' Poseur release (MMPose 0.x, written under NumPy 1.x) hold a
# NumPy scalar (best_score) under NumPy 1's name of the same constructor.
RELEASE_CHECKPOINT_GLOBALS = [(_NUMPY_SCALAR, 'numpy.core.multiarray.scalar')]


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list :data:`MMENGINE_CHECKPOINT_GLOBALS` and :data:`RELEASE_CHECKPOINT_GLOBALS`
    for ``torch.load(weights_only=True)`` in this process. Importing ``poseur_mm`` (a
    config's ``custom_imports``) calls it."""
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS + RELEASE_CHECKPOINT_GLOBALS)


allow_mmengine_checkpoint_globals()
