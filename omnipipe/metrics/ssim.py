"""``ssim``: structural similarity (Wang et al. 2004), Gaussian window, per frame and channel."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from omnipipe.metrics.base import EvalBatch
from omnipipe.metrics.running import RunningMean
from omnipipe.nn.frames import fold_frames


def gaussian_window(width: int, sigma: float) -> torch.Tensor:
    """A normalised 2-D Gaussian kernel (1, 1, width, width), float64."""
    offsets = torch.arange(width, dtype=torch.float64) - (width - 1) / 2
    line = torch.exp(-offsets.square() / (2 * sigma**2))
    line /= line.sum()
    return (line[:, None] * line[None, :])[None, None]


def ssim(reconstruction: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM (B,) of ``(B, C, T, H, W)`` tensors in [-1, 1] (as [0, 1] images, K1 = 0.01, K2 = 0.03).

    The window shrinks to the frame when a frame is smaller than ``window``.
    """
    b, c, t, h, w = target.shape
    side = min(window, h, w)
    kernel = gaussian_window(side, sigma).to(target.device)
    x = fold_frames((reconstruction.clamp(-1, 1) + 1) / 2).double().reshape(-1, 1, h, w)  # (B·T·C, 1, H, W)
    y = fold_frames((target + 1) / 2).double().reshape(-1, 1, h, w)
    mu_x, mu_y = F.conv2d(x, kernel), F.conv2d(y, kernel)
    var_x = F.conv2d(x * x, kernel) - mu_x.square()
    var_y = F.conv2d(y * y, kernel) - mu_y.square()
    cov = F.conv2d(x * y, kernel) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))
    return index.view(b, t * c, -1).mean(dim=(1, 2)).float()


class SSIM:
    """Structural similarity on [0, 1] pixels (11×11 Gaussian window, σ 1.5), averaged over samples."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        window: int = Field(default=11, ge=3, description="Gaussian window side (odd)")
        sigma: float = Field(default=1.5, gt=0)

    per_sample_key = "ssim"

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.values = RunningMean()
        self.description = (
            f"no network: SSIM on [0, 1] pixels, {params.window}×{params.window} Gaussian window (σ {params.sigma}), "
            "per frame and channel, mean over samples"
        )

    def update(self, batch: EvalBatch) -> torch.Tensor:
        return self.values.add(ssim(batch.reconstruction, batch.target, self.params.window, self.params.sigma))

    def compute(self) -> dict[str, float]:
        return {"ssim": self.values.mean}
