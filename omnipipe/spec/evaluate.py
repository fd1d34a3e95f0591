"""The ``evaluate`` section: which checkpoints, which metrics, on which val samples, how intervals are drawn."""
from __future__ import annotations

from pydantic import Field

from omnipipe.spec.base import PositiveInt, Resolution, StrictModel
from omnipipe.spec.component import MetricSpec


class EvaluateSpec(StrictModel):
    stages: list[str] | None = Field(
        default=None,
        description="the training stages whose tokenizers are evaluated, in one report (default: the last stage of each bottleneck)",
    )
    resolutions: list[Resolution] | None = Field(default=None, description="val resolutions to evaluate (default: all prepared)")
    skip_classes: list[str] = Field(
        default_factory=list,
        description="glob patterns of val labels left out (e.g. ['digit-*']: data prepared for the generators)",
    )
    metrics: list[MetricSpec] = Field(default_factory=list)
    max_samples: PositiveInt | None = None
    batch_size: PositiveInt = 8
    visual_samples: PositiveInt = Field(default=8, description="samples per kind shown in the PNG grids and mp4s")
    bootstrap: int = Field(default=200, ge=0, description="resamples of the val samples for 95 % intervals (0: none)")
    allow_proxy: bool = Field(
        default=False, description="allow metrics from randomly initialised networks; their keys then say proxy"
    )
