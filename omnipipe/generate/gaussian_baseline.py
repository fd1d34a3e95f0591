"""The Gaussian-noise baseline of latent generators: every latent drawn on its own from N(mean_c, std_c²).

The latent counterpart of the independent-token baseline: per-channel mean and std of the train
latents (the statistics ``LatentScaling`` fits), shared by every position — no position, no
neighbour, no class. Decoded by the same tokenizer, it shows what the tokenizer's decoder makes of
latents with the right scale and nothing else; a generator's gFID must be far below it.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

from omnipipe.generate.contract import GenerationError, TokenLayout
from omnipipe.generate.latent_scaling import LatentScaling


class GaussianLatents:
    """Independent per-channel Gaussians fitted on the train latents (latents layouts only)."""

    def __init__(self, layout: TokenLayout, train_tokens: Iterable[torch.Tensor]) -> None:
        if layout.kind != "latents":
            raise GenerationError("the Gaussian-noise baseline needs continuous latents")
        self.layout = layout
        self.scaling = LatentScaling(layout.channels)
        self.scaling.fit(train_tokens)

    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """Latents (count, L, C), every value drawn independently with ``generator``."""
        noise = torch.randn(count, self.layout.length, self.layout.channels, generator=generator)
        return self.scaling.denormalize(noise)
