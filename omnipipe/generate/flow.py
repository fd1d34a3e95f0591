"""Rectified flow (velocity prediction, as in SiT): the default objective of the ``ldm`` generator.

    x_t = (1 − t)·x₀ + t·ε,   t ∈ [0, 1],   ε ~ N(0, I)
    v(x_t, t) = E[ε − x₀ | x_t]            the velocity dx_t/dt the network regresses (MSE)

Sampling integrates dx/dt = v from t = 1 (pure noise) down to t = 0 (data) on the uniform grid
t_k = 1 − k/N with Euler (one network call per step) or Heun (Euler predictor, trapezoidal
corrector: two calls per step, second order).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

# (x, noise level (B,), step index) → the network's prediction, shaped like x.
Predict = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]

FlowSampler = Literal["euler", "heun"]


def per_sample(level: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample scalar (B,) shaped (B, 1, …) to broadcast against ``like`` (B, …), in its dtype."""
    return level.to(like.dtype).reshape(-1, *[1] * (like.ndim - 1))


class RectifiedFlow:
    """Straight paths from data to noise; noise level t ∈ [0, 1] (0 = clean), velocity target ε − x₀."""

    samplers: tuple[str, ...] = ("euler", "heun")
    default_sampler = "euler"

    def training_levels(self, batch: int, device: torch.device) -> torch.Tensor:
        """t ~ U(0, 1) per sample, (B,)."""
        return torch.rand(batch, device=device)

    def corrupt(self, clean: torch.Tensor, noise: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """x_t (B, …) for clean x₀ and noise ε (B, …) at levels t (B,)."""
        t = per_sample(level, clean)
        return (1 - t) * clean + t * noise

    def target(self, clean: torch.Tensor, noise: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The regression target: the velocity ε − x₀."""
        return noise - clean

    def network_time(self, level: torch.Tensor) -> torch.Tensor:
        """What the network is told (B,) float in [0, 1]: t itself."""
        return level.float()

    def integrate(self, predict: Predict, noise: torch.Tensor, steps: int, sampler: FlowSampler) -> torch.Tensor:
        """Transport ``noise`` (B, …) at t = 1 to samples at t = 0 in ``steps`` Euler or Heun steps."""
        times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64).tolist()
        x = noise
        for k in range(steps):
            t, s = times[k], times[k + 1]
            velocity = predict(x, noise.new_full((noise.shape[0],), t), k)
            euler = x + (s - t) * velocity
            if sampler == "euler":
                x = euler
            else:
                corrected = predict(euler, noise.new_full((noise.shape[0],), s), k)
                x = x + (s - t) * 0.5 * (velocity + corrected)
        return x
