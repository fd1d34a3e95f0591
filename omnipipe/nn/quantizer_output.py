"""The bottleneck contract shared by every quantizer, builtin or plugin (DESIGN.md §3)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch


@dataclass
class QuantizerOutput:
    """What a bottleneck returns.

    z_q: the (quantized or sampled) latents, same shape as the input ``z`` (B, T', H', W', D).
    codes: integer codes (B, T', H', W'), or None for a continuous bottleneck.
    losses: named loss terms (e.g. ``commitment``, ``kl``) that the trainer weighs from the spec.
    stats: detached numbers for logging (e.g. ``usage``, ``perplexity``), 0-d tensors or floats.
    latents: the compact continuous latents (B, T', H', W', C) of a continuous bottleneck (what a
        latent generator models and ``decode_codes`` takes back), or None for a discrete one.
    """

    z_q: torch.Tensor
    codes: torch.Tensor | None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    latents: torch.Tensor | None = None


@runtime_checkable
class Quantizer(Protocol):
    """The interface every registered ``quantizer`` implements."""

    codebook_size: int | None

    def __call__(self, z: torch.Tensor) -> QuantizerOutput: ...

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T', H', W') (or a continuous bottleneck's ``latents``) → z_q (B, T', H', W', D)."""
        ...
