"""Safetensors files that are byte-identical whenever their tensors and metadata are: metadata keys sorted.

safetensors keeps a file's ``__metadata__`` in a hash map, so the same tensors and metadata come out
with the metadata keys in another order from one call to the next. The file's hash then changes
although nothing in it did, and ``dvc repro`` reruns every stage downstream of a retrained model.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save
from torch import nn

from omnipipe.atomic import atomic_write


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """``safetensors.torch.save(tensors, metadata)`` with the metadata in sorted key order."""
    blob = save(tensors, metadata=metadata)
    length = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + length])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data that follows stays 8-byte aligned, as safetensors pads it
    return len(text).to_bytes(8, "little") + text + blob[8 + length :]


def write_module(path: str | Path, module: nn.Module, metadata: dict[str, str]) -> None:
    """``module``'s state dict (on the CPU) and ``metadata`` as one safetensors file, written atomically."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in module.state_dict().items()}
    blob = safetensors_bytes(tensors, metadata)
    atomic_write(Path(path), lambda file: file.write(blob))
