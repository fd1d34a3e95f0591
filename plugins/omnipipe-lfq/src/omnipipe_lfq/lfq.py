"""Quantizer ``lfq``: lookup-free quantization (Yu et al., "Language Model Beats Diffusion —
Tokenizer is Key to Visual Generation", MAGVIT-v2, 2023).

Each latent is projected to ``code_bits`` channels; each channel is quantized to its sign,
q_k = ±code_scale (straight-through). The codebook is implicit, {-s, +s}^K with 2**K codes, and
the code is the integer with bit k set where q_k > 0.

Entropy penalty (MAGVIT-v2): with the soft assignment p(c | z) ∝ exp(-||z - c||² / temperature)
over the implicit codebook, which factorises per bit as p_k(+s | z) = sigmoid(4 s z_k / temperature),

    entropy = entropy_weight · (E_z[H(p(c | z))] − diversity_weight · H(E_z[p(c | z)]))

(per-sample term minimised: confident codes; codebook term maximised: every code used), plus
``commitment`` = beta · ||z − q||² (mean over elements). Everything from the input projection on runs
in fp32, also under autocast (entropy terms in fp16 produce NaNs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

import omnipipe


class LookupFreeQuantizer(nn.Module):
    """LFQ bottleneck: project to code_bits channels, sign → ±scale (straight-through), entropy penalty."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        code_bits: int = Field(default=10, gt=0, le=62, description="bits per code K; codebook_size = 2**K")
        code_scale: float = Field(default=1.0, gt=0, description="quantized values are ±code_scale")
        temperature: float = Field(default=1.0, gt=0, description="of the soft assignment exp(-||z - c||² / t)")
        entropy_weight: float = Field(default=0.1, ge=0, description="weight of the whole entropy term")
        diversity_weight: float = Field(default=1.0, ge=0, description="weight of the codebook entropy (maximised)")
        beta: float = Field(default=0.25, ge=0, description="commitment weight inside the `commitment` term")
        entropy_group_bits: int | None = Field(
            default=None,
            gt=0,
            description="codebook entropy computed exactly over groups of this many bits (None: all bits, "
            "exact, up to omnipipe.entropy_group_bits' limit); smaller groups are the factorised approximation",
        )

        @model_validator(mode="after")
        def _groups_fit(self) -> "LookupFreeQuantizer.Params":
            omnipipe.entropy_group_bits(self.code_bits, self.entropy_group_bits)
            return self

    def __init__(self, params: Params, dim: int) -> None:
        super().__init__()
        self.params = params
        self.code_bits = params.code_bits
        self.codebook_size: int | None = 2**params.code_bits
        self.group_bits = omnipipe.entropy_group_bits(params.code_bits, params.entropy_group_bits)
        self.register_buffer("bit_values", 2 ** torch.arange(params.code_bits), persistent=False)
        self.proj_in = nn.Linear(dim, params.code_bits)
        self.proj_out = nn.Linear(params.code_bits, dim)

    def forward(self, z: torch.Tensor) -> omnipipe.QuantizerOutput:
        """Latents (B, T', H', W', D) → QuantizerOutput, codes (B, T', H', W'); all in fp32."""
        p, s = self.params, self.params.code_scale
        with torch.autocast(z.device.type, enabled=False):
            h = _linear32(self.proj_in, z)  # (B, T', H', W', K)
            positive = h > 0
            q = torch.where(positive, s, -s)  # (B, T', H', W', K)
            codes = (positive.long() * self.bit_values).sum(-1)  # (B, T', H', W')
            logits = (4 * s / p.temperature) * h.reshape(-1, self.code_bits)  # (N, K) log-odds of +s
            per_sample, codebook = omnipipe.binary_entropy_terms(logits, self.group_bits)
            losses = {
                "commitment": p.beta * F.mse_loss(h, q),
                "entropy": p.entropy_weight * (per_sample - p.diversity_weight * codebook),
            }
            z_q = _linear32(self.proj_out, h + (q - h).detach())  # straight-through
            stats = omnipipe.code_usage_stats(codes, self.codebook_size)
            stats["sample_entropy"] = per_sample.detach()
            stats["codebook_entropy"] = codebook.detach()
        return omnipipe.QuantizerOutput(z_q, codes, losses, stats)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, T', H', W') → z_q (B, T', H', W', D), fp32."""
        with torch.autocast(codes.device.type, enabled=False):
            bits = (codes.long().unsqueeze(-1) >> torch.arange(self.code_bits, device=codes.device)) & 1
            return _linear32(self.proj_out, (bits.float() * 2 - 1) * self.params.code_scale)


def _linear32(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` computed in fp32 whatever the dtypes of ``x`` and of the layer's weights."""
    bias = None if layer.bias is None else layer.bias.float()
    return F.linear(x.float(), layer.weight.float(), bias)
