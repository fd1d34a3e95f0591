"""Registration of the builtin metrics: reconstruction quality, codebook use, FID (images) and FVD (clips)."""
from __future__ import annotations

from omnipipe.metrics.codebook import CodebookUsage
from omnipipe.metrics.compression import Compression
from omnipipe.metrics.fid import FID
from omnipipe.metrics.fvd import FVD
from omnipipe.metrics.lpips_metric import LPIPSMetric
from omnipipe.metrics.psnr import PSNR
from omnipipe.metrics.ssim import SSIM
from omnipipe.registry import Registry


def register(registry: Registry) -> None:
    registry.add("metric", "psnr", PSNR)
    registry.add("metric", "ssim", SSIM)
    registry.add("metric", "lpips", LPIPSMetric)
    registry.add("metric", "codebook_usage", CodebookUsage)
    registry.add("metric", "compression", Compression)
    registry.add("metric", "fid", FID)
    registry.add("metric", "fvd", FVD)
