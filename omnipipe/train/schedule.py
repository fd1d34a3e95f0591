"""Learning-rate schedules: linear warm-up, then constant or cosine decay to ``min_lr_ratio``."""
from __future__ import annotations

import math
from collections.abc import Callable

from omnipipe.spec.train import ScheduleSpec


def lr_factor(schedule: ScheduleSpec, total_steps: int) -> Callable[[int], float]:
    """The multiplier of the base learning rate at each optimizer step (for ``LambdaLR``)."""
    warmup = schedule.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule.name == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return schedule.min_lr_ratio + (1.0 - schedule.min_lr_ratio) * cosine

    return factor
