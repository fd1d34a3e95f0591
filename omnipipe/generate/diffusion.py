"""DDPM with ε-prediction on the linear 1,000-step schedule, sampled with DDIM: the ``ldm`` option matching DiT/Latte.

    β_i linear from 1e-4 to 0.02 (i = 0 … 999),  ᾱ_i = Π_{j ≤ i} (1 − β_j)
    x_i = √ᾱ_i · x₀ + √(1 − ᾱ_i) · ε            the network predicts ε (MSE)

DDIM (Song et al. 2021) visits N of the 1,000 indices, ``i_k = (k + 1)·1000/N − 1`` from the last
down, and then the clean data (ᾱ = 1). From ᾱ_a to ᾱ_b:

    x̂₀ = (x − √(1 − ᾱ_a)·ε̂) / √ᾱ_a
    σ  = η · √((1 − ᾱ_b)/(1 − ᾱ_a)) · √(1 − ᾱ_a/ᾱ_b)
    x' = √ᾱ_b · x̂₀ + √(1 − ᾱ_b − σ²) · ε̂ + σ·z

η = 0 is deterministic (and, run with ᾱ rising, inverts itself up to discretisation error); η = 1
has DDPM's posterior variance.
"""
from __future__ import annotations

import torch

from omnipipe.generate.flow import Predict, per_sample


def ddim_step(
    x: torch.Tensor,
    eps: torch.Tensor,
    alpha_from: torch.Tensor,
    alpha_to: torch.Tensor,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One DDIM move of ``x`` (B, …) with predicted noise ``eps`` from ᾱ = ``alpha_from`` to ``alpha_to`` (0-d)."""
    clean = (x - (1 - alpha_from).sqrt() * eps) / alpha_from.sqrt()
    if eta == 0:
        return alpha_to.sqrt() * clean + (1 - alpha_to).sqrt() * eps
    sigma = eta * ((1 - alpha_to) / (1 - alpha_from)).sqrt() * (1 - alpha_from / alpha_to).clamp(min=0).sqrt()
    out = alpha_to.sqrt() * clean + (1 - alpha_to - sigma.square()).clamp(min=0).sqrt() * eps
    return out + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


class LinearDDPM:
    """The DDPM forward process on a linear β schedule; noise level = the step index i (0 … T − 1)."""

    samplers: tuple[str, ...] = ("ddim",)
    default_sampler = "ddim"

    def __init__(self, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        self.num_steps = num_steps
        betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        self.alpha_bar = torch.cumprod(1 - betas, dim=0)  # (T,) float64

    def timesteps(self, steps: int) -> list[int]:
        """The ``steps`` indices DDIM visits, last first: (k + 1)·T/N − 1 for k = N − 1 … 0."""
        return [(k + 1) * self.num_steps // steps - 1 for k in reversed(range(steps))]

    def training_levels(self, batch: int, device: torch.device) -> torch.Tensor:
        """i ~ U{0, …, T − 1} per sample, (B,) int64."""
        return torch.randint(0, self.num_steps, (batch,), device=device)

    def alphas(self, level: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """ᾱ at step indices ``level`` (B,), shaped to broadcast against ``like``."""
        return per_sample(self.alpha_bar.to(like.device)[level], like)

    def corrupt(self, clean: torch.Tensor, noise: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        alpha = self.alphas(level, clean)
        return alpha.sqrt() * clean + (1 - alpha).sqrt() * noise

    def target(self, clean: torch.Tensor, noise: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The regression target: the noise ε."""
        return noise

    def network_time(self, level: torch.Tensor) -> torch.Tensor:
        """(i + 1)/T in (0, 1]; 0 is left for clean (given) frames."""
        return (level.float() + 1) / self.num_steps

    def integrate(
        self, predict: Predict, noise: torch.Tensor, steps: int, eta: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """DDIM from ``noise`` (B, …) at the last index to clean samples in ``steps`` network calls."""
        visited = self.timesteps(steps)
        alpha_bar = self.alpha_bar.to(device=noise.device, dtype=noise.dtype)
        x = noise
        for k, index in enumerate(visited):
            eps = predict(x, torch.full((noise.shape[0],), index, dtype=torch.long, device=noise.device), k)
            alpha_to = alpha_bar[visited[k + 1]] if k + 1 < steps else alpha_bar.new_ones(())
            x = ddim_step(x, eps, alpha_bar[index], alpha_to, eta, generator)
        return x
