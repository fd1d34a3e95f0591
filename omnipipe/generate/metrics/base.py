"""The generation-metric contract: real data in, one or more versions of generated data in, numbers out.

A generation metric is a ``metric`` component with ``role = "generation"``, built as
``cls(params, allow_proxy=..., device=...)``. The evaluation stage feeds it the real val clips
(``update_real``), every version of generated clips by name (``update_generated``: the generator's
samples, the independent-token baseline's), and — when ``needs_train`` — the real train clips first
(``update_train``, e.g. to fit a classifier). Pixels are ``(B, C, T, H, W)`` in [-1, 1], labels
``(B,)`` class indices (-1: none). ``compute()`` gives ``{version: {key: value}}``, plus ``"real"``
for numbers about the real data alone; keys of numbers from random weights end in ``_proxy``.
"""
from __future__ import annotations

from typing import ClassVar

import torch


class GenerationMetric:
    """Base of the builtin generation metrics (the methods a metric does not need do nothing)."""

    role: ClassVar[str] = "generation"
    needs_train: ClassVar[bool] = False

    def update_train(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        """Real train clips (only called when ``needs_train``)."""

    def update_real(self, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        """Real val clips: the reference."""

    def update_generated(self, version: str, pixels: torch.Tensor, labels: torch.Tensor) -> None:
        """Generated clips of one version (e.g. ``generator``, ``baseline_independent``)."""

    def compute(self) -> dict[str, dict[str, float]]:
        raise NotImplementedError
