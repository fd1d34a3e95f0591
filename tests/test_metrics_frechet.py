"""The Fréchet distance against closed forms, SciPy's matrix square root, and its running feature statistics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from omnipipe.metrics.frechet import (
    GaussianStats,
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
