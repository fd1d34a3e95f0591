"""Helpers of the prepare tests: a registry of the data sources, small specs, images that identify themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omnipipe.data.components import register
from omnipipe.registry import Registry
from omnipipe.spec.data import DataSpec


def data_registry() -> Registry:
    registry = Registry()
    register(registry)
    return registry


def data_spec(registry: Registry, out: Path, sources: list[dict], **settings) -> DataSpec:
    defaults = {"resolutions": [[16, 16]], "clip_frames": 5, "clip_stride": 4, "fps": 8}
    data = DataSpec.model_validate({"sources": sources, "prepared_dir": str(out), **defaults, **settings})
    for entry in data.sources:
        entry.resolve(registry)
    return data


def solid_images(root: Path, values: range) -> None:
    """One 12×12 image per value, filled with it (the value identifies the image after preparing)."""
    root.mkdir(parents=True, exist_ok=True)
    for value in values:
        Image.fromarray(np.full((12, 12, 3), value, np.uint8)).save(root / f"img_{value:03d}.png")
