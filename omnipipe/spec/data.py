"""The ``data`` section: sources, clip cutting, resolutions, the train/val split and the image/video mix."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from omnipipe.spec.base import PositiveInt, Real, Resolution, StrictModel
from omnipipe.spec.component import DatasetSpec


class MixSpec(StrictModel):
    """How joint stages interleave image batches and video batches."""

    schedule: Literal["alternate", "random"] = Field(
        default="alternate", description="alternate: evenly spread image batches; random: each batch drawn at random"
    )
    image_fraction: Real = Field(default=0.5, ge=0, le=1, description="share of batches that are image batches")


class DataSpec(StrictModel):
    """Where the media comes from and how it is cut into training examples."""

    sources: list[DatasetSpec] = Field(min_length=1)
    prepared_dir: str = "data/prepared"
    fps: Real = Field(default=8.0, gt=0, description="videos are resampled to this frame rate")
    clip_frames: PositiveInt = Field(default=9, description="frames per video clip")
    clip_stride: PositiveInt = Field(default=4, description="a new clip starts every N resampled frames")
    resolutions: list[Resolution] = Field(default_factory=lambda: [(64, 64)], min_length=1)
    crop_margin: Real = Field(
        default=0.125, ge=0, le=1, description="stored this much larger than each resolution, for random crops"
    )
    val_fraction: Real = Field(default=0.1, ge=0, lt=1)
    split_unit: Literal["file", "timeline", "clip"] = Field(
        default="file",
        description="file: whole files; timeline: videos cut into train and val spans one clip apart; "
        "clip: single clips (overlapping clips leak)",
    )
    files_per_shard: PositiveInt = Field(default=256, description="input files per unit of work and shard")
    max_upscale: Real = Field(
        default=4.0, ge=1,
        description="skip media that must be enlarged more than this to cover the largest resolution",
    )  # fmt: skip
    max_aspect_ratio: Real = Field(
        default=4.0, ge=1, description="skip media whose longer side exceeds this many shorter sides"
    )
    mix: MixSpec = Field(default_factory=MixSpec)
