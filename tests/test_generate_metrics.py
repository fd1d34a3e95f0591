"""Generation metrics and the independent-token baseline, against closed forms and brute force."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from omnipipe.generate.baseline import IndependentTokens
from omnipipe.generate.contract import Segment, TokenLayout
from omnipipe.generate.metrics.class_consistency import ClassConsistency, thumbnails
from omnipipe.generate.metrics.frechet import _FrechetMetric
from omnipipe.metrics.frechet import frechet_distance_from_features


def _pictures(labels: torch.Tensor, frames: int = 1, seed: int = 0) -> torch.Tensor:
    """(B, 3, T, 8, 8): class c lights up row c, plus a little noise."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.full((len(labels), 3, frames, 8, 8), -1.0) + 0.1 * torch.rand(len(labels), 3, frames, 8, 8, generator=generator)
    for i, label in enumerate(labels.tolist()):
        x[i, :, :, label] = 1.0
    return x


def test_class_consistency_counts_samples_shown_as_their_label() -> None:
    metric = ClassConsistency(ClassConsistency.Params())
    labels = torch.arange(4).repeat(10)
    metric.update_train(_pictures(labels), labels)
    metric.update_real(_pictures(labels, seed=1), labels)
    shown = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    metric.update_generated("good", _pictures(shown, frames=3, seed=2), shown)
    metric.update_generated("half", _pictures(shown, seed=3), torch.tensor([0, 1, 2, 3, 1, 2, 3, 0]))
    metric.update_generated("unlabelled", _pictures(shown, seed=3), torch.full((8,), -1))
    result = metric.compute()
    assert result["real"]["class_consistency"] == 1.0 and result["good"]["class_consistency"] == 1.0
    assert result["half"]["class_consistency"] == 0.5 and math.isnan(result["unlabelled"]["class_consistency"])


def test_thumbnails_are_grey_block_means() -> None:
    x = torch.rand(2, 3, 1, 8, 8) * 2 - 1
    expected = x.mean(1)[:, 0].reshape(2, 4, 2, 4, 2).mean((2, 4)).reshape(2, 16)
    assert np.allclose(thumbnails(x, 4), expected.numpy())


class _Identity(_FrechetMetric):
    key = "identity"

    def _wanted(self, pixels: torch.Tensor) -> bool:
        return True


def test_frechet_metric_compares_each_version_with_the_real_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIPIPE_CACHE", str(tmp_path))  # features go through the on-disk cache
    rng = np.random.default_rng(0)
    real, near, far = rng.normal(size=(50, 3)), rng.normal(size=(40, 3)), rng.normal(3.0, 1.0, size=(40, 3))
    network = SimpleNamespace(features=lambda x: x.reshape(len(x), -1).double(), is_proxy=True,
                              description="identity", device=torch.device("cpu"))  # fmt: skip
    metric = _Identity(network)
    for name, values in (("near", near), ("far", far)):
        for part in np.array_split(values, 3):
            metric.update_generated(name, torch.from_numpy(part), torch.zeros(len(part)))
    metric.update_real(torch.from_numpy(real), torch.zeros(50))
    result = metric.compute()
    assert result["near"]["identity_proxy"] == pytest.approx(frechet_distance_from_features(real, near), rel=1e-9)
    assert result["far"]["identity_proxy"] > 10 * result["near"]["identity_proxy"]


def test_independent_tokens_baseline() -> None:
    layout = TokenLayout.grid_of("codes", (1, 2, 2), 4)
    train = np.array([[0, 0, 1, 2], [0, 1, 2, 0]])  # frequencies 4/8, 2/8, 2/8, 0
    baseline = IndependentTokens(layout, train)
    assert baseline.entropy_bits() == pytest.approx(1.5)
    assert baseline.cross_entropy_bits(np.array([[0, 1, 2, 0]])) == pytest.approx((1 + 2 + 2 + 1) / 4)
    drawn = baseline.sample(4000, torch.Generator().manual_seed(0))
    assert drawn.shape == (4000, 4) and int(drawn.max()) <= 2
    assert np.bincount(drawn.flatten().numpy(), minlength=4) / drawn.numel() == pytest.approx([0.5, 0.25, 0.25, 0], abs=0.02)


def test_independent_tokens_keep_each_segment_in_its_vocabulary() -> None:
    layout = TokenLayout("codes", (Segment("key", (1, 1, 2), vocab_size=3), Segment("residual", (2, 1, 1), vocab_size=2, time_offset=1)))
    baseline = IndependentTokens(layout, np.array([[2, 2, 1, 1], [0, 2, 1, 0]]))
    drawn = baseline.sample(500, torch.Generator().manual_seed(1))
    layout.check(drawn)
    assert set(drawn[:, :2].flatten().tolist()) == {0, 2} and set(drawn[:, 2:].flatten().tolist()) == {0, 1}


def test_centred_thumbnails_do_not_depend_on_where_the_object_is() -> None:
    frame = torch.full((2, 3, 1, 16, 16), -1.0)
    blob = torch.tensor([[1.0, 0.5], [0.5, 1.0]]).repeat_interleave(2, 0).repeat_interleave(2, 1)  # 4×4
    frame[0, :, 0, 1:5, 2:6] = blob
    frame[1, :, 0, 9:13, 10:14] = blob
    centred = thumbnails(frame, 2, centre=True)
    assert np.allclose(centred[0], centred[1]) and np.allclose(centred[0], [1.0, 0.5, 0.5, 1.0])
    assert not np.allclose(thumbnails(frame, 2)[0], thumbnails(frame, 2)[1])
