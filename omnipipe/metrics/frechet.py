"""The Fréchet distance between two Gaussians fitted to feature sets (the distance behind FID and FVD).

    d² = |μ₁ − μ₂|² + tr(Σ₁) + tr(Σ₂) − 2 tr((Σ₁ Σ₂)^½)

``tr((Σ₁ Σ₂)^½)`` is computed without a general matrix square root: Σ₁ Σ₂ is similar to the symmetric
positive semi-definite A Σ₂ A with A = Σ₁^½, so its trace root is Σᵢ √λᵢ(A Σ₂ A). Both steps are
symmetric eigen-decompositions in float64 (eigenvalues clipped at 0), which stay real and stable when
the covariances are singular — as they are whenever there are fewer samples than feature dimensions.
(pytorch-fid's ``calculate_frechet_distance`` calls ``scipy.linalg.sqrtm(..., disp=False)``, an
argument SciPy 1.18 removes; nothing here calls it.)
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from omnipipe.metrics.base import EvalBatch


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The PSD square root of a symmetric matrix (negative round-off eigenvalues clipped to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((Σ₁ Σ₂)^½) for symmetric PSD Σ₁, Σ₂."""
    root = _symmetric_sqrt(np.asarray(sigma1, dtype=np.float64))
    inner = root @ np.asarray(sigma2, dtype=np.float64) @ root
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂); ≥ 0 up to round-off."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"frechet_distance: shapes do not fit: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(max(value, 0.0))


@dataclass
class Gaussian:
    """Mean (D,) and covariance (D, D), float64."""

    mean: np.ndarray
    cov: np.ndarray


class GaussianStats:
    """Running mean and covariance of feature vectors.

    Sums are taken in float64 around a shift (the first batch's mean), which keeps the
    ``Σxxᵀ − n·μμᵀ`` form from cancelling catastrophically when the mean is large. While there are
    fewer samples than dimensions the rows are kept as well (``rows``): the covariance then has low
    rank and ``frechet_distance_of`` takes a much cheaper exact route through them.
    """

    def __init__(self) -> None:
        self.count = 0
        self.shift: np.ndarray | None = None
        self.total: np.ndarray | None = None
        self.outer: np.ndarray | None = None
        self.rows: list[np.ndarray] | None = []

    def add(self, features: torch.Tensor | np.ndarray) -> None:
        """Add a batch of features (N, D)."""
        x = features.detach().double().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
        if x.ndim != 2:
            raise ValueError(f"GaussianStats.add: expected features (N, D), got shape {x.shape}")
        if x.shape[0] == 0:
            return
        if self.shift is None:
            self.shift = x.mean(axis=0)
            self.total = np.zeros_like(self.shift)
            self.outer = np.zeros((x.shape[1], x.shape[1]))
        elif x.shape[1] != self.shift.shape[0]:
            raise ValueError(f"GaussianStats.add: feature size {x.shape[1]} differs from {self.shift.shape[0]}")
        centred = x - self.shift
        self.total += centred.sum(axis=0)
        self.outer += centred.T @ centred
        self.count += x.shape[0]
        if self.rows is not None:
            self.rows.append(centred)
            if self.count >= x.shape[1]:
                self.rows = None

    def gaussian(self) -> Gaussian:
        """The sample mean and unbiased covariance; needs at least two samples."""
        if self.count < 2 or self.shift is None:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
        offset = self.total / self.count
        cov = (self.outer - self.count * np.outer(offset, offset)) / (self.count - 1)
        return Gaussian(self.shift + offset, (cov + cov.T) / 2)

    def factor(self) -> np.ndarray | None:
        """B (D, N) with B Bᵀ = covariance, while the rows are kept; else None."""
        if self.rows is None or self.count < 2:
            return None
        rows = np.concatenate(self.rows)
        return (rows - rows.mean(axis=0)).T / np.sqrt(self.count - 1)


def frechet_distance_of(a: GaussianStats, b: GaussianStats) -> float:
    """Fréchet distance between the Gaussians of two running feature sets; NaN with fewer than 2 samples in either.

    With fewer samples than dimensions, Σ₁ = B Bᵀ has a thin factor B (D × n) and the non-zero
    eigenvalues of Σ₁ Σ₂ are those of the small PSD matrix Bᵀ Σ₂ B (n × n): the same value at
    O(D² n) instead of two D × D eigen-decompositions.
    """
    if a.count < 2 or b.count < 2:
        return math.nan
    ga, gb = a.gaussian(), b.gaussian()
    factors = [(f, other) for f, other in ((a.factor(), gb.cov), (b.factor(), ga.cov)) if f is not None]
    if not factors:
        return frechet_distance(ga.mean, ga.cov, gb.mean, gb.cov)
    factor, other = min(factors, key=lambda pair: pair[0].shape[1])
    inner = factor.T @ other @ factor
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    root_trace = float(np.sqrt(np.clip(values, 0.0, None)).sum())
    diff = ga.mean - gb.mean
    return float(max(diff @ diff + np.trace(ga.cov) + np.trace(gb.cov) - 2.0 * root_trace, 0.0))


class PairedFeatures:
    """Feature statistics of targets and of their reconstructions, and the Fréchet distance between them."""

    def __init__(self) -> None:
        self.targets, self.reconstructions = GaussianStats(), GaussianStats()

    @property
    def count(self) -> int:
        return self.targets.count

    def add(self, batch: EvalBatch, features: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Add ``features`` of the batch's targets and reconstructions (computed once when they are the same)."""
        target = features(batch.target)
        self.targets.add(target)
        self.reconstructions.add(target if batch.reconstruction is batch.target else features(batch.reconstruction))

    def distance(self) -> float:
        return frechet_distance_of(self.targets, self.reconstructions)


def frechet_distance_from_features(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets x (N, D) and y (M, D)."""
    a, b = GaussianStats(), GaussianStats()
    a.add(x)
    b.add(y)
    return frechet_distance_of(a, b)
