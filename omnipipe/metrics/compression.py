"""``compression``: tokens per image and per clip, and bits per pixel of the code stream."""
from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict

from omnipipe.metrics.base import EvalBatch


class Compression:
    """Tokens per image / clip and bits per pixel (log2 of the codebook size per token; 32-bit floats per latent value)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    per_sample_key = None
    description = "no network: tokens per sample; bits per pixel = log2(codebook size) per token, 32 bits per continuous value"

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.tokens: dict[str, tuple[int, int]] = {}  # kind → (tokens, samples)
        self.bits = 0.0
        self.pixels = 0

    def update(self, batch: EvalBatch) -> None:
        if batch.quantized is None:
            return None
        b, _, t, h, w = batch.target.shape
        if batch.quantized.codes is not None and batch.codebook_size is not None:
            tokens = batch.quantized.codes[0].numel()
            bits_per_token = math.log2(batch.codebook_size)
        else:  # continuous: one latent vector per position
            latents = batch.quantized.latents if batch.quantized.latents is not None else batch.quantized.z_q
            tokens = latents[0, ..., 0].numel()
            bits_per_token = 32.0 * latents.shape[-1]
        kind = "image" if t == 1 else "clip"
        seen, samples = self.tokens.get(kind, (0, 0))
        self.tokens[kind] = (seen + tokens * b, samples + b)
        self.bits += bits_per_token * tokens * b
        self.pixels += t * h * w * b
        return None

    def compute(self) -> dict[str, float]:
        out = {f"tokens_per_{kind}": seen / samples for kind, (seen, samples) in self.tokens.items()}
        if self.pixels:
            out["bits_per_pixel"] = self.bits / self.pixels
        return out
