"""Quantizer ``kl``: a diagonal Gaussian bottleneck (continuous, no codes)."""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from omnipipe.nn.quantizer_output import QuantizerOutput


class DiagonalGaussian(nn.Module):
    """Project to mean and log-variance of ``latent_channels``; sample in training, the mean in evaluation.

    Loss term ``kl`` = ``kl_weight`` · KL(q ‖ N(0, I)) summed over every latent element (T'·H'·W'·C)
    and averaged over the batch (``reduction: batch_mean``), as the OmniTokenizer reference (and LDM's
    KL autoencoder) defines it, so its ``kl_weight`` (1e-6 there) means the same here; or summed over
    channels and averaged over latent positions (``position_mean``). ``stats["kl"]`` holds the
    unweighted value.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        latent_channels: int = Field(default=8, gt=0, description="channels of the Gaussian latent")
        kl_weight: float = Field(default=1e-6, ge=0, description="weight inside the `kl` loss term")
        reduction: Literal["position_mean", "batch_mean"] = Field(
            default="batch_mean",
            description="KL summed per sample and averaged over the batch (the reference's), or summed over channels and averaged over positions",
        )

    def __init__(self, params: Params, dim: int) -> None:
        super().__init__()
        self.params = params
        self.codebook_size: int | None = None
        self.proj_in = nn.Linear(dim, 2 * params.latent_channels)
        self.proj_out = nn.Linear(params.latent_channels, dim)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Latents (B, T', H', W', D) → QuantizerOutput (codes None, ``latents`` (B, T', H', W', C))."""
        with torch.autocast(z.device.type, enabled=False):
            mean, logvar = self.proj_in(z.to(torch.promote_types(z.dtype, torch.float32))).chunk(2, dim=-1)  # (B, T', H', W', C) each
            logvar = logvar.clamp(-30.0, 20.0)
            latents = mean + (0.5 * logvar).exp() * torch.randn_like(mean) if self.training else mean
            kl = gaussian_kl(mean, logvar)
            if self.params.reduction == "position_mean":
                kl = kl / (mean[..., 0].numel() / mean.shape[0])  # positions per sample
            stats = {"kl": kl.detach(), "std": (0.5 * logvar).exp().mean().detach()}
            return QuantizerOutput(
                self.proj_out(latents), None, {"kl": self.params.kl_weight * kl}, stats, latents=latents
            )

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Continuous latents (B, T', H', W', C) (``QuantizerOutput.latents``) → z_q (B, T', H', W', D)."""
        with torch.autocast(codes.device.type, enabled=False):
            return self.proj_out(codes.to(self.proj_out.weight.dtype))


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) ‖ N(0, 1)) of ``(B, …)`` latents: summed over all but the batch dim, averaged over the batch."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum() / mean.shape[0]
