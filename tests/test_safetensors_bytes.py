"""Safetensors files written by omnipipe are byte-identical for identical content (metadata keys sorted)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from omnipipe.safetensors_bytes import safetensors_bytes

METADATA = {f"key-{i}": f"value {i}" for i in range(12)} | {"format": "pt", "omnipipe.spec": '{"width": 64, "name": "größe ✓"}'}


def tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"a.weight": torch.randn(3, 5, generator=generator), "b": torch.arange(7, dtype=torch.int64),
            "c": torch.randn(2, generator=generator).to(torch.bfloat16)}  # fmt: skip


def test_same_content_gives_the_same_bytes_with_sorted_metadata() -> None:
    reordered = dict(reversed(list(METADATA.items())))
    blobs = {safetensors_bytes(tensors(), metadata) for metadata in [METADATA, reordered] * 5}
    assert len(blobs) == 1
    blob = blobs.pop()
    length = int.from_bytes(blob[:8], "little")
    assert length % 8 == 0
    header = json.loads(blob[8 : 8 + length])
    assert list(header["__metadata__"]) == sorted(METADATA)


def test_the_file_reads_back_with_its_tensors_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(safetensors_bytes(tensors(), METADATA))
    loaded = load_file(path)
    assert loaded.keys() == tensors().keys() and all(torch.equal(loaded[name], t) for name, t in tensors().items())
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata() == METADATA
