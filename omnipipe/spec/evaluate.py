"""The ``evaluate`` section: which checkpoint, which metrics, on how many val samples."""
from __future__ import annotations

from pydantic import Field

from omnipipe.spec.base import PositiveInt, StrictModel
from omnipipe.spec.component import MetricSpec


class EvaluateSpec(StrictModel):
    stage: str | None = Field(default=None, description="the training stage whose checkpoint is evaluated (default: last)")
    metrics: list[MetricSpec] = Field(default_factory=list)
    max_samples: PositiveInt | None = None
    batch_size: PositiveInt = 8
    visual_samples: PositiveInt = Field(default=8, description="samples per kind shown in the PNG grids and mp4s")
    allow_proxy: bool = Field(
        default=False, description="allow metrics from randomly initialised networks; their keys then say proxy"
    )
