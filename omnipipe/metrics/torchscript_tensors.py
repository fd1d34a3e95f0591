"""The tensors of a TorchScript archive, read without loading it as a program.

``torch.jit.load`` compiles the archive's code and runs its ``__setstate__`` methods while loading, and
``torch.load(weights_only=True)`` refuses TorchScript archives. ``read_torchscript_tensors`` unpickles
the archive's ``data.pkl`` with a restricted unpickler instead: every ``__torch__.*`` object becomes a
plain holder of its attributes, tensors are rebuilt from the archive's ``data/<key>`` storage records,
and any other global the pickle names is refused.
"""
from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}  # fmt: skip
LIST_BUILDERS = frozenset({"build_intlist", "build_doublelist", "build_boollist"})


class ScriptObject:
    """Stands in for any TorchScript class: keeps the attributes it was pickled with."""

    def __init__(self) -> None:
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"a TorchScript object with state of type {type(state).__name__}")
        self.attributes = state


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any) -> torch.Tensor:
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


class TorchScriptUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl``: script objects, ordered dicts, int lists and tensors only."""

    def __init__(self, file: Any, archive: zipfile.ZipFile, root: str) -> None:
        super().__init__(file)
        self.archive, self.root = archive, root

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__."):
            return ScriptObject
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch.jit._pickle" and name in LIST_BUILDERS:
            return list
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a module's tensors")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError(f"unexpected persistent reference {pid!r:.80}")
        dtype, key = pid[1], str(pid[2])
        data = bytearray(self.archive.read(f"{self.root}/data/{key}"))
        return torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)


def _collect(node: ScriptObject, prefix: str, out: dict[str, torch.Tensor]) -> None:
    for name, value in node.attributes.items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, ScriptObject):
            _collect(value, f"{prefix}{name}.", out)


def read_torchscript_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of the archive's module tree, by dotted name (as ``state_dict()`` names them)."""
    with zipfile.ZipFile(path) as archive:
        roots = [name[: -len("/data.pkl")] for name in archive.namelist() if name.count("/") == 1 and name.endswith("/data.pkl")]
        if len(roots) != 1:
            raise ValueError(f"{path.name} is not a TorchScript archive (no single <root>/data.pkl)")
        with archive.open(f"{roots[0]}/data.pkl") as file:
            top = TorchScriptUnpickler(file, archive, roots[0]).load()
    if not isinstance(top, ScriptObject):
        raise ValueError(f"{path.name}: the archive's data.pkl does not hold a module")
    tensors: dict[str, torch.Tensor] = {}
    _collect(top, "", tensors)
    return tensors
