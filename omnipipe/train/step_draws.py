"""Random draws during training that a resumed run repeats: seeded by the step, not by a running generator.

torch's global generator is not a safe source inside a training step: a resumed run rebuilds its data
iterator, which draws from it, so later draws shift. ``StepDraws`` seeds a fresh generator from
(seed, rank, step, n-th call in the step) instead.
"""
from __future__ import annotations

import numpy as np
import torch


class StepDraws:
    """Generators seeded by (seed, rank, step, n-th call in the step): the same draws whenever a step is run."""

    def __init__(self, seed: int, rank: int) -> None:
        self.seed, self.rank = seed, rank
        self._step, self._calls = -1, 0

    def __call__(self, step: int) -> torch.Generator:
        if step != self._step:
            self._step, self._calls = step, 0
        self._calls += 1
        entropy = np.random.SeedSequence([self.seed, self.rank, step, self._calls]).generate_state(1, np.uint64)[0]
        return torch.Generator().manual_seed(int(entropy))
