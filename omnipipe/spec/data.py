"""The ``data`` section: sources, clip cutting, resolutions and the train/val split."""
from __future__ import annotations

from pydantic import Field

from omnipipe.spec.base import PositiveInt, Resolution, StrictModel
from omnipipe.spec.component import DatasetSpec


class DataSpec(StrictModel):
    """Where the media comes from and how it is cut into training examples."""

    sources: list[DatasetSpec] = Field(min_length=1)
    prepared_dir: str = "data/prepared"
    fps: float = Field(default=8.0, gt=0)
    clip_frames: PositiveInt = 9
    clip_stride: PositiveInt = 4
    resolutions: list[Resolution] = Field(default_factory=lambda: [(64, 64)], min_length=1)
    val_fraction: float = Field(default=0.1, ge=0, lt=1)
