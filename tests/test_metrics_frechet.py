"""The Fréchet distance against closed forms, SciPy's matrix square root, and its running feature statistics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

import torch

from omnipipe.metrics.base import EvalBatch
from omnipipe.metrics.frechet import (
    GaussianStats,
    PairedFeatures,
    frechet_distance,
    frechet_distance_from_features,
    frechet_distance_of,
)


def test_one_dimensional_gaussians_have_the_closed_form() -> None:
    # W2²(N(m1, s1²), N(m2, s2²)) = (m1 − m2)² + (s1 − s2)²
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]])) == pytest.approx(
        9.0 + 1.0, rel=1e-12
    )
    assert frechet_distance(0.5, 2.0, 0.5, 2.0) == pytest.approx(0.0, abs=1e-12)


def test_diagonal_gaussians_sum_the_per_axis_distances() -> None:
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 0.0])  # one degenerate axis
    expected = float(np.sum((mu1 - mu2) ** 2 + (np.sqrt(var1) - np.sqrt(var2)) ** 2))
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-12)


def test_general_covariances_match_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    root = scipy.linalg.sqrtm(s1 @ s2)  # reference only; called without the removed ``disp`` argument
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_identical_feature_sets_give_zero_and_a_shift_gives_its_squared_norm() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 16)) * 3.0 + 5.0
    assert frechet_distance_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    shift = np.linspace(-1, 1, 16)
    # same covariance, means apart by ``shift``: d = |shift|² exactly
    assert frechet_distance_from_features(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-8)
    wider = frechet_distance_from_features(x, x * 2.0)
    assert wider > frechet_distance_from_features(x, x * 1.1) > 0


def test_low_rank_route_equals_the_full_route() -> None:
    rng = np.random.default_rng(2)
    a, b = GaussianStats(), GaussianStats()
    a.add(rng.normal(size=(7, 50)))  # fewer samples than dimensions: covariance of rank 6
    b.add(rng.normal(size=(9, 50)) * 1.5 + 0.3)
    assert a.factor() is not None
    ga, gb = a.gaussian(), b.gaussian()
    # the full route takes √ of ~44 round-off eigenvalues (≈1e-16 each → ≈1e-8 each): agreement to 1e-6
    assert frechet_distance_of(a, b) == pytest.approx(frechet_distance(ga.mean, ga.cov, gb.mean, gb.cov), rel=1e-6)


def test_running_statistics_match_numpy_and_survive_a_large_offset() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 8)) + 1e6  # a large mean: naive Σxxᵀ − nμμᵀ would lose every digit
    stats = GaussianStats()
    for chunk in np.array_split(x, 7):
        stats.add(chunk)
    gaussian = stats.gaussian()
    assert stats.count == 300 and stats.rows is None  # rows dropped once count ≥ dimensions
    np.testing.assert_allclose(gaussian.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gaussian.cov, np.cov(x.T), rtol=1e-6, atol=1e-9)


def test_too_few_samples_and_mismatched_shapes() -> None:
    one, two = GaussianStats(), GaussianStats()
    one.add(np.zeros((1, 4)))
    two.add(np.ones((3, 4)))
    assert math.isnan(frechet_distance_of(one, two))
    with pytest.raises(ValueError, match="feature size 5 differs from 4"):
        two.add(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="shapes do not fit"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_paired_bootstrap_resamples_whole_samples_and_agrees_with_the_covariance_route() -> None:
    rng = np.random.default_rng(4)
    targets = torch.from_numpy(rng.normal(size=(6, 3, 1, 1, 1)))  # 6 samples
    recon = targets + 0.5
    features = lambda pixels: torch.from_numpy(  # noqa: E731 - 2 frames of 20 features per sample, far from 0
        np.concatenate([np.tile(p.flatten().numpy(), 7)[None, :20] * (k + 1) + 100 for p in pixels for k in range(2)])
    )
    pairs = PairedFeatures("toy")
    pairs.add(EvalBatch(targets[:4], recon[:4], None, None), features)
    batch = EvalBatch(targets[4:], recon[4:], None, None)
    pairs.add(batch, features)
    assert pairs.rows_per_sample == [2] * 6 and set(batch.target_features) == {"toy"}
    resamples = np.stack([np.arange(6), rng.integers(0, 6, 6), rng.integers(0, 6, 6)])
    values = pairs.bootstrap(resamples)
    assert values is not None and values.shape == (3,)
    assert values[0] == pytest.approx(pairs.distance(), rel=1e-6)  # the identity resample: the point estimate
    for samples, value in zip(resamples[1:], values[1:]):
        rows = np.concatenate([[2 * s, 2 * s + 1] for s in samples])
        x, y = features(targets).numpy()[rows], features(recon).numpy()[rows]
        expected = frechet_distance(x.mean(0), np.cov(x.T), y.mean(0), np.cov(y.T))
        assert value == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_bootstrap_needs_the_kept_rows() -> None:
    pairs = PairedFeatures("toy")
    many = torch.from_numpy(np.random.default_rng(5).normal(size=(12, 1, 1, 1, 4)))
    pairs.add(EvalBatch(many, many * 2, None, None), lambda pixels: pixels.flatten(1))  # 12 samples ≥ 4 dims: rows dropped
    assert pairs.bootstrap(np.zeros((2, 12), dtype=int)) is None and pairs.distance() > 0
