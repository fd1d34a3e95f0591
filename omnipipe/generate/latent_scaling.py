"""Per-channel standardisation of a KL tokenizer's latents, fitted on the training latents and saved with the model.

Diffusion assumes data of roughly unit scale next to N(0, I) noise. Instead of a constant borrowed
from another VAE (Stable Diffusion's 0.18215), the statistics come from the very latents the model
trains on: ``z_n = (z − mean_c) / std_c`` per channel c, computed in float64 over every position of
every training sequence. They live in buffers, so they are saved, loaded and EMA-copied with the weights.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from omnipipe.generate.contract import GenerationError

MIN_STD = 1e-6  # a dead channel (constant everywhere) is shifted, not blown up


class LatentScaling(nn.Module):
    """``normalize`` / ``denormalize`` latents (..., C) with per-channel mean and std (identity until fitted)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, batches: Iterable[torch.Tensor]) -> None:
        """Mean and std per channel over all of ``batches`` — latents (N, L, C), streamed, summed in float64."""
        channels = self.mean.numel()
        count, total, squares = 0, torch.zeros(channels, dtype=torch.float64), torch.zeros(channels, dtype=torch.float64)
        for latents in batches:
            if latents.shape[-1] != channels:
                raise GenerationError(f"latent scaling for {channels} channels was given latents with {latents.shape[-1]}")
            flat = latents.reshape(-1, channels).to(torch.float64).cpu()  # (N·L, C)
            count += flat.shape[0]
            total += flat.sum(0)
            squares += flat.square().sum(0)
        if count < 2:
            raise GenerationError(f"latent scaling needs at least 2 latent positions to fit, got {count}")
        mean = total / count
        variance = (squares - count * mean.square()).clamp(min=0) / (count - 1)
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(variance.sqrt().clamp(min=MIN_STD).to(self.std))
        self.fitted.fill_(True)

    def normalize(self, latents: torch.Tensor) -> torch.Tensor:
        """Tokenizer latents (..., C) → standardised latents the diffusion model works on."""
        return (latents - self.mean.to(latents.dtype)) / self.std.to(latents.dtype)

    def denormalize(self, latents: torch.Tensor) -> torch.Tensor:
        """The inverse of ``normalize``: back to the tokenizer's latent space."""
        return latents * self.std.to(latents.dtype) + self.mean.to(latents.dtype)
