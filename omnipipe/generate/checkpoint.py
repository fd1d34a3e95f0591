"""A trained generator is one file: safetensors weights plus its component entry and token layout as metadata."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from omnipipe.errors import OmnipipeError
from omnipipe.generate.contract import TokenLayout
from omnipipe.registry import Registry
from omnipipe.safetensors_bytes import write_module

GENERATOR_KEY = "omnipipe.generator"


def save_generator(path: Path, model: torch.nn.Module, component: dict[str, Any]) -> None:
    """Write ``model``'s weights with ``component`` (``{type, ...params}``) and its layout, atomically."""
    meta = json.dumps({"component": component, "layout": model.layout.to_json()})
    write_module(path, model, {"format": "pt", GENERATOR_KEY: meta})


def load_generator(path: str | Path, registry: Registry, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a generator saved by ``save_generator`` (through the registry), load its weights, eval mode."""
    path = Path(path)
    if not path.is_file():
        raise OmnipipeError(f"{path}: generator checkpoint not found")
    with safe_open(str(path), framework="pt") as handle:
        text = (handle.metadata() or {}).get(GENERATOR_KEY)
    if text is None:
        raise OmnipipeError(f"{path}: not an omnipipe generator checkpoint (no '{GENERATOR_KEY}' metadata)")
    meta = json.loads(text)
    model = registry.build("generator", meta["component"], layout=TokenLayout.from_json(meta["layout"]))
    model.load_state_dict(load_file(str(path), device=str(device)))
    return model.to(device).eval()
