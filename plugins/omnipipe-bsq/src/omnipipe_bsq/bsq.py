"""Quantizer ``bsq``: binary spherical quantization (Zhao, Xiong, Krähenbühl, "Image and Video
Tokenization with Binary Spherical Quantization", 2024).

Each latent is projected to ``code_bits`` = K channels and l2-normalised onto the unit sphere,
u = v / ||v||; every channel is quantized to its sign on the sphere, q_k = sign(u_k) / sqrt(K)
(straight-through), so q is a unit vector too and ||u − q|| is bounded. The codebook is implicit,
2**K corners of the hypercube inscribed in the sphere; the code has bit k set where u_k > 0.

Entropy regularisation (BSQ §3.3): the soft assignment q̂(c | u) ∝ exp(inv_temperature · c·u)
over the implicit codebook factorises per bit, q̂_k(+ | u) = sigmoid(2 · inv_temperature · u_k / sqrt(K)),
so the per-sample entropy is exact; the codebook entropy H(E_u[q̂(c | u)]) is exact over all bits
(default) or summed over groups of ``entropy_group_bits`` bits (the paper's factorised
approximation for large K):

    entropy    = entropy_weight · (E_u[H(q̂(c | u))] − diversity_weight · H(E_u[q̂(c | u)]))
    commitment = beta · ||u − q||²  (summed over channels, mean over tokens)

Everything from the input projection on runs in fp32, also under autocast.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

import omnipipe


class BinarySphericalQuantizer(nn.Module):
    """BSQ bottleneck: project to code_bits, l2-normalise, sign → ±1/sqrt(K) (straight-through), entropy penalty."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        code_bits: int = Field(default=10, gt=0, le=62, description="bits per code K; codebook_size = 2**K")
        inv_temperature: float = Field(
            default=10.0, gt=0, description="τ of the soft assignment exp(τ c·u); the bits' log-odds are 2τ·u_k/sqrt(K)"
        )
        entropy_weight: float = Field(default=0.1, ge=0, description="weight of the whole entropy term")
        diversity_weight: float = Field(default=1.0, ge=0, description="weight of the codebook entropy (maximised)")
        beta: float = Field(default=0.25, ge=0, description="commitment weight inside the `commitment` term")
        entropy_group_bits: int | None = Field(
            default=None,
            gt=0,
            description="codebook entropy computed exactly over groups of this many bits (None: all bits, "
            "exact, up to omnipipe.entropy_group_bits' limit); smaller groups are the paper's factorised approximation",
        )

        @model_validator(mode="after")
        def _groups_fit(self) -> "BinarySphericalQuantizer.Params":
            omnipipe.entropy_group_bits(self.code_bits, self.entropy_group_bits)
            return self

    def __init__(self, params: Params, dim: int) -> None:
        super().__init__()
        self.params = params
        self.code_bits = params.code_bits
        self.codebook_size: int | None = 2**params.code_bits
        self.group_bits = omnipipe.entropy_group_bits(params.code_bits, params.entropy_group_bits)
        self.level = 1 / math.sqrt(params.code_bits)  # |q_k|
        self.register_buffer("bit_values", 2 ** torch.arange(params.code_bits), persistent=False)
        self.proj_in = nn.Linear(dim, params.code_bits)
        self.proj_out = nn.Linear(params.code_bits, dim)

    def forward(self, z: torch.Tensor) -> omnipipe.QuantizerOutput:
        """Latents (B, T', H', W', D) → QuantizerOutput, codes (B, T', H', W'); all in fp32."""
        p = self.params
        with torch.autocast(z.device.type, enabled=False):
            u = F.normalize(_linear32(self.proj_in, z), dim=-1)  # (B, T', H', W', K) on the unit sphere
            positive = u > 0
            q = torch.where(positive, self.level, -self.level)  # (B, T', H', W', K), ||q|| = 1
            codes = (positive.long() * self.bit_values).sum(-1)  # (B, T', H', W')
            logits = (2 * p.inv_temperature * self.level) * u.reshape(-1, self.code_bits)  # (N, K)
            per_sample, codebook = omnipipe.binary_entropy_terms(logits, self.group_bits)
            losses = {
                "commitment": p.beta * (u - q).square().sum(-1).mean(),
                "entropy": p.entropy_weight * (per_sample - p.diversity_weight * codebook),
            }
            z_q = _linear32(self.proj_out, u + (q - u).detach())  # straight-through
            stats = omnipipe.code_usage_stats(codes, self.codebook_size)
            stats["sample_entropy"] = per_sample.detach()
            stats["codebook_entropy"] = codebook.detach()
        return omnipipe.QuantizerOutput(z_q, codes, losses, stats)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T', H', W') → z_q (B, T', H', W', D), fp32."""
        with torch.autocast(codes.device.type, enabled=False):
            bits = (codes.long().unsqueeze(-1) >> torch.arange(self.code_bits, device=codes.device)) & 1
            return _linear32(self.proj_out, (bits.float() * 2 - 1) * self.level)


def _linear32(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` computed in fp32 whatever the dtypes of ``x`` and of the layer's weights."""
    bias = None if layer.bias is None else layer.bias.float()
    return F.linear(x.float(), layer.weight.float(), bias)
