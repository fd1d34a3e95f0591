"""Exponential moving average of a model: its weights and its floating-point buffers alike.

Buffers that training moves (a VQ codebook and its cluster statistics) are averaged with the same
decay as the weights, so the EMA model's codebook belongs to the averaged projections around it — not
to the live model. Integer buffers (counters) are copied.
"""
from __future__ import annotations

import copy

import torch


class WeightEMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * live`` for every parameter and float buffer after each step."""

    def __init__(self, model: torch.nn.Module, decay: float, shadow: torch.nn.Module | None = None) -> None:
        """``shadow``: the averaged copy to keep (e.g. one holding a sharded model's slices); a deep copy of ``model`` by default."""
        self.decay = decay
        self.shadow = (shadow if shadow is not None else copy.deepcopy(model)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for ema_param, param in zip(self.shadow.parameters(), model.parameters()):
            ema_param.lerp_(param.detach(), 1.0 - self.decay)
        for ema_buffer, buffer in zip(self.shadow.buffers(), model.buffers()):
            if buffer.is_floating_point():
                ema_buffer.lerp_(buffer, 1.0 - self.decay)
            else:
                ema_buffer.copy_(buffer)
