"""Optimizers and learning-rate schedules from the spec's ``optimizer`` and ``schedule`` entries."""
from __future__ import annotations

from collections.abc import Iterable

import torch

from omnipipe.spec.train import OptimizerSpec, ScheduleSpec
from omnipipe.train.schedule import lr_factor


def make_optimizer(spec: OptimizerSpec, parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam or AdamW over ``parameters`` with the spec's learning rate, betas and weight decay."""
    kind = torch.optim.AdamW if spec.name == "adamw" else torch.optim.Adam
    return kind(list(parameters), lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)


def make_scheduler(
    optimizer: torch.optim.Optimizer, schedule: ScheduleSpec, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Warm-up then constant or cosine decay over ``total_steps`` optimizer steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(schedule, total_steps))
