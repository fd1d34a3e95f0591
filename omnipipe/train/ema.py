"""Exponential moving average of a model's weights (buffers are copied as they are)."""
from __future__ import annotations

import copy

import torch


class WeightEMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for ema_param, param in zip(self.shadow.parameters(), model.parameters()):
            ema_param.lerp_(param.detach(), 1.0 - self.decay)
        for ema_buffer, buffer in zip(self.shadow.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)
