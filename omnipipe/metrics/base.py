"""The metric contract: ``update`` per evaluation batch, ``compute`` once at the end.

A metric component is built as ``cls(params, allow_proxy=..., device=...)``. ``update(batch)``
returns per-sample values ``(B,)`` (written to the per-sample CSV under ``per_sample_key``) or None
for metrics defined only over a whole set (FID, FVD). ``compute()`` returns named numbers for
``metrics.json``; a metric computed with randomly initialised networks names its keys ``*_proxy``.
A metric whose pretrained weights are missing raises ``MetricUnavailable`` when built, unless
``allow_proxy`` is true. Optional: ``description`` (which network and weights the values come from,
shown in the evaluation summary) and ``bootstrap(resamples)`` for a set metric — its value on each
resample of the samples (rows of sample indices), for a confidence interval.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from omnipipe.errors import OmnipipeError
from omnipipe.nn.quantizer_output import QuantizerOutput


class MetricUnavailable(OmnipipeError):
    """A metric cannot be computed here (e.g. its pretrained weights file is missing); says why."""


@dataclass
class EvalBatch:
    """One evaluation batch: pixels are ``(B, C, T, H, W)`` in [-1, 1].

    ``target_features`` is shared by the versions (tokenizers, baseline) measured on the same targets:
    a metric stores the targets' features there under its network's key and the next one reuses them.
    """

    target: torch.Tensor
    reconstruction: torch.Tensor
    quantized: QuantizerOutput | None
    codebook_size: int | None
    target_features: dict[str, torch.Tensor] = field(default_factory=dict)


class Metric(Protocol):
    per_sample_key: str | None

    def update(self, batch: EvalBatch) -> torch.Tensor | None: ...

    def compute(self) -> dict[str, float]: ...
