"""A restricted unpickler for weight files that are pickles of plain numpy arrays (Flax checkpoints).

``pickle.load`` runs whatever callable a file names (``os.system`` is one opcode away), so a weights
file must never be unpickled blindly. ``load_numpy_pickle`` allows numpy arrays inside dicts, lists
and tuples, and nothing else.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np


def _numpy_reconstruct() -> Any:
    core = getattr(np, "_core", None)  # numpy ≥ 2 (numpy.core is a deprecated alias there)
    multiarray = core.multiarray if core is not None else np.core.multiarray
    return multiarray._reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays inside builtin containers, and nothing else.

    Every global a pickle references goes through ``find_class``; this one hands out only the three
    that numpy's array pickling needs — ``ndarray``, ``dtype`` and ``multiarray._reconstruct`` — and
    refuses the rest. Dicts, lists, tuples, strings and numbers need no globals. Array contents are
    checked afterwards as well (numeric dtypes only, so no object arrays).
    """

    ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent references: only numpy arrays are allowed")


def load_numpy_pickle(path: Path) -> Any:
    """A pickle holding only numpy arrays in dicts/lists/tuples; anything else raises ``UnpicklingError``."""
    with open(path, "rb") as file:
        tree = NumpyOnlyUnpickler(io.BufferedReader(file)).load()

    def check(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                check(value, f"{where}/{key}")
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                check(value, f"{where}/{index}")
        elif isinstance(node, np.ndarray):
            if node.dtype.kind not in "fiub":
                raise pickle.UnpicklingError(f"{where}: array of dtype {node.dtype} is not numeric")
        elif not isinstance(node, (str, int, float, bool, type(None))):
            raise pickle.UnpicklingError(f"{where}: unexpected {type(node).__name__}")

    check(tree, "")
    return tree
