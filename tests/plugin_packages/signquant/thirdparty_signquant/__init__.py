"""A third-party quantizer written against omnipipe's public API only (the README example)."""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict

import omnipipe


class SignQuantizer(torch.nn.Module):
    """Binary codes from the sign of each channel, scaled."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        scale: float = 1.0

    def __init__(self, params: Params, dim: int) -> None:
        super().__init__()
        self.scale = params.scale
        self.dim = dim
        self.codebook_size = 2**dim

    def forward(self, z: torch.Tensor) -> omnipipe.QuantizerOutput:
        hard = torch.where(z > 0, self.scale, -self.scale)
        z_q = z + (hard - z).detach()
        weights = 2 ** torch.arange(self.dim, device=z.device)
        codes = ((z > 0).long() * weights).sum(-1)
        return omnipipe.QuantizerOutput(z_q, codes, {"commitment": (z - hard).square().mean()}, {})

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        bits = (codes.unsqueeze(-1) >> torch.arange(self.dim, device=codes.device)) & 1
        return (bits.float() * 2 - 1) * self.scale


@omnipipe.hookimpl
def omnipipe_register(registry: omnipipe.Registry) -> None:
    registry.add("quantizer", "sign", SignQuantizer)
