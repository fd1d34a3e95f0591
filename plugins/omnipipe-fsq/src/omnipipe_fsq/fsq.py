"""Quantizer ``fsq``: finite scalar quantization (Mentzer et al., "Finite Scalar Quantization: VQ-VAE
Made Simple", 2023).

Each latent is projected to ``len(levels)`` channels; channel i is bounded to ``levels[i]`` integer
values and rounded (straight-through). The implicit codebook is the grid of all combinations,
``codebook_size = prod(levels)``; a code is the mixed-radix number of the per-channel digits.

Bounding, for L levels (half-step offset for even L so that exactly L integers are reachable):

    half = (L - 1)(1 + eps) / 2,  offset = 0.5 if L even else 0,  shift = atanh(offset / half)
    bound(x) = tanh(x + shift) * half - offset      # odd L: (-(L-1)/2, (L-1)/2); even: (-L/2, L/2 - 1)
    q = round(bound(x)) / (L // 2)                  # in [-1, 1]

Everything from the input projection to the codes runs in fp32 (codes in int64), also under
autocast: in bf16, bounded values near a rounding boundary land in the neighbouring cell (about 2%
of tokens for [8, 8, 4]), and a code index computed in bf16 cannot even represent the integers
above 256 (the upstream report of FSQ using about half of its codes under bf16).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

import omnipipe

EPS = 1e-3


class FiniteScalarQuantizer(nn.Module):
    """FSQ bottleneck: project to len(levels) channels, bound with tanh, round (straight-through), project back."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        levels: list[int] = Field(
            default=[8, 5, 5, 5],
            min_length=1,
            description="number of values per channel; codebook_size = prod(levels) (e.g. [8, 8, 4] = 256)",
        )

        @field_validator("levels")
        @classmethod
        def _at_least_two(cls, levels: list[int]) -> list[int]:
            if any(level < 2 for level in levels):
                raise ValueError(f"every level must be at least 2, got {levels}")
            if math.prod(levels) > 2**62:
                raise ValueError(f"prod(levels) = {math.prod(levels)} does not fit in int64 codes")
            return levels

    def __init__(self, params: Params, dim: int) -> None:
        super().__init__()
        self.params = params
        self.codebook_size: int | None = math.prod(params.levels)
        levels = torch.tensor(params.levels, dtype=torch.float64)
        half = (levels - 1) * (1 + EPS) / 2
        offset = torch.where(levels.remainder(2) == 0, 0.5, 0.0)
        basis = torch.cumprod(torch.tensor([1, *params.levels[:-1]], dtype=torch.int64), dim=0)
        # constants, recomputed from params: not part of the state dict
        self.register_buffer("levels", levels.long(), persistent=False)
        self.register_buffer("half_range", half.float(), persistent=False)
        self.register_buffer("half_step", offset.float(), persistent=False)
        self.register_buffer("shift", torch.atanh(offset / half).float(), persistent=False)
        self.register_buffer("half_width", (levels.long() // 2).float(), persistent=False)
        self.register_buffer("basis", basis, persistent=False)
        self.proj_in = nn.Linear(dim, len(params.levels))
        self.proj_out = nn.Linear(len(params.levels), dim)

    def bound(self, h: torch.Tensor) -> torch.Tensor:
        """fp32 (..., d) → values in each channel's range, before rounding."""
        return torch.tanh(h + self.shift) * self.half_range - self.half_step

    def quantize(self, h: torch.Tensor) -> torch.Tensor:
        """fp32 projected latents (..., d) → grid points in [-1, 1] (..., d), straight-through."""
        bounded = self.bound(h)
        rounded = bounded + (torch.round(bounded) - bounded).detach()
        return rounded / self.half_width

    def codes_from_grid(self, q: torch.Tensor) -> torch.Tensor:
        """Grid points in [-1, 1] (..., d) → mixed-radix codes (...)."""
        digits = torch.round(q * self.half_width + self.half_width).long()  # (..., d) in [0, L_i)
        return (digits * self.basis).sum(-1)

    def grid_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (...) → fp32 grid points in [-1, 1] (..., d)."""
        digits = (codes.long().unsqueeze(-1) // self.basis) % self.levels  # (..., d)
        return (digits.float() - self.half_width) / self.half_width

    def forward(self, z: torch.Tensor) -> omnipipe.QuantizerOutput:
        """Latents (B, T', H', W', D) → QuantizerOutput, codes (B, T', H', W'); all in fp32."""
        with torch.autocast(z.device.type, enabled=False):
            h = _linear32(self.proj_in, z)  # (B, T', H', W', d)
            q = self.quantize(h)  # (B, T', H', W', d)
            codes = self.codes_from_grid(q.detach())  # (B, T', H', W')
            z_q = _linear32(self.proj_out, q)  # (B, T', H', W', D)
            stats = omnipipe.code_usage_stats(codes, self.codebook_size)
        return omnipipe.QuantizerOutput(z_q, codes, {}, stats)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T', H', W') → z_q (B, T', H', W', D), fp32."""
        with torch.autocast(codes.device.type, enabled=False):
            return _linear32(self.proj_out, self.grid_from_codes(codes))


def _linear32(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` computed in fp32 whatever the dtypes of ``x`` and of the layer's weights."""
    bias = None if layer.bias is None else layer.bias.float()
    return F.linear(x.float(), layer.weight.float(), bias)
