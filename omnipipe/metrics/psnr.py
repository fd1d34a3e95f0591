"""``psnr``: peak signal-to-noise ratio in dB, pixels mapped to [0, 1], per sample then averaged."""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict

from omnipipe.metrics.base import EvalBatch
from omnipipe.metrics.running import RunningMean


def squared_error(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element squared error on pixels mapped to [0, 1], in float64; the reconstruction is clamped to [-1, 1]."""
    return ((reconstruction.clamp(-1, 1) - target) / 2).double().square()


def psnr_of_mse(error: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of a mean squared error on [0, 1] pixels (floored at 1e-12: 120 dB)."""
    return (-10 * torch.log10(error.clamp_min(1e-12))).float()


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (B,) of ``(B, C, T, H, W)`` tensors in [-1, 1]; the reconstruction is clamped to that range."""
    return psnr_of_mse(squared_error(reconstruction, target).flatten(1).mean(dim=1))  # (B,) MSE in [0, 1]²


class PSNR:
    """Peak signal-to-noise ratio (dB) on [0, 1] pixels, averaged over samples."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

    per_sample_key = "psnr"
    description = "no network: 10·log10(1 / MSE) on [0, 1] pixels per sample (clips: over all frames), mean over samples"

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.values = RunningMean()

    def update(self, batch: EvalBatch) -> torch.Tensor:
        return self.values.add(psnr(batch.reconstruction, batch.target))

    def compute(self) -> dict[str, float]:
        return {"psnr": self.values.mean}
