"""A running mean of per-sample values, shared by the per-sample metrics."""
from __future__ import annotations

import torch


class RunningMean:
    """Sum and count of per-sample values seen so far."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, values: torch.Tensor) -> torch.Tensor:
        """Add a batch of per-sample values (B,) and return them."""
        self.total += float(values.double().sum())
        self.count += values.numel()
        return values

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")
