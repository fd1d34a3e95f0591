"""``fid``: missing-weights errors, the random-Inception proxy, frames counted as images, registration."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from omnipipe.metrics.base import EvalBatch, MetricUnavailable
from omnipipe.metrics.components import register
from omnipipe.metrics.fid import FID, FID_WEIGHTS_NAME, fid_weights_file
from omnipipe.registry import Registry


def _pixels(seed: int, batch: int, frames: int = 1, size: int = 16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, frames, size, size, generator=generator) * 2 - 1


def test_missing_weights_name_the_exact_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_NAME
    assert fid_weights_file() == expected
    with pytest.raises(MetricUnavailable) as error:
        FID(FID.Params(), allow_proxy=False)
    assert str(error.value) == (
        f"fid: the FID Inception weights {FID_WEIGHTS_NAME} are missing at {expected} "
        "(copy the file there or set weights_path; allow_proxy: true gives fid_proxy)"
    )
    elsewhere = tmp_path / "mine.pth"
    with pytest.raises(MetricUnavailable, match=f"missing at {elsewhere} "):
        FID(FID.Params(weights_path=str(elsewhere)))


def test_a_file_that_is_not_the_fid_state_dict_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(MetricUnavailable, match=f"fid: {wrong} is not pytorch-fid's Inception state dict"):
        FID(FID.Params(weights_path=str(wrong)))


def test_proxy_is_zero_for_identical_sets_and_grows_with_a_shift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no weights there: the proxy
    same = FID(FID.Params(), allow_proxy=True)
    assert same.key == "fid_proxy" and same.per_sample_key is None
    clips = _pixels(0, batch=1, frames=2)  # every frame counts as an image
    assert same.update(EvalBatch(clips, clips, None, None)) is None
    assert same.pairs.targets.count == 2 and same.pairs.reconstructions.count == 2
    identical = same.compute()["fid_proxy"]
    assert identical == pytest.approx(0.0, abs=1e-6)  # float64 statistics: round-off only

    images = _pixels(1, batch=2)
    shifted = FID(FID.Params(), allow_proxy=True)
    shifted.update(EvalBatch(images, (images * 0.5 + 0.4).clamp(-1, 1), None, None))
    assert shifted.compute()["fid_proxy"] > 1.0


def test_fewer_than_two_images_give_nan() -> None:
    metric = FID(FID.Params(), allow_proxy=True) if not fid_weights_file().is_file() else FID(FID.Params())
    assert all(value != value for value in metric.compute().values())  # NaN


def test_registered_with_strict_params() -> None:
    registry = Registry()
    register(registry)
    assert registry.names("metric") == ["codebook_usage", "compression", "fid", "fvd", "lpips", "psnr", "ssim"]
    with pytest.raises(Exception, match="frames_per_forwrd"):
        registry.build("metric", {"type": "fid", "frames_per_forwrd": 3}, allow_proxy=True, device=torch.device("cpu"))
    built = registry.build("metric", {"type": "fid", "frames_per_forward": 3}, allow_proxy=True, device=torch.device("cpu"))
    assert isinstance(built, FID) and built.params.frames_per_forward == 3
