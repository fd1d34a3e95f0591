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


def frechet_distance_of_rows(
    k_aa: np.ndarray, k_ab: np.ndarray, k_bb: np.ndarray, shift_a: np.ndarray, shift_b: np.ndarray, shift_sq: float
) -> float:
    """Fréchet distance between two equally large feature sets given only through inner products.

    With rows ``aᵢ = xᵢ − s_x`` and ``bᵢ = yᵢ − s_y`` (n each): ``k_aa = A Aᵀ``, ``k_ab = A Bᵀ``,
    ``k_bb = B Bᵀ`` (n × n), ``shift_a = A d``, ``shift_b = B d`` and ``shift_sq = |d|²`` for
    ``d = s_x − s_y``. With the centring matrix H and Σ_x = Aᵀ H A / (n − 1), ``tr Σ_x = tr(H k_aa H) / (n − 1)``
    and ``tr((Σ_x Σ_y)^½)`` is the sum of the singular values of ``H k_ab H / (n − 1)``: an n × n problem
    whatever the feature size, which makes bootstrap resamples cheap.
    """
    n = k_aa.shape[0]

    def centred(k: np.ndarray) -> np.ndarray:
        return k - k.mean(axis=0, keepdims=True) - k.mean(axis=1, keepdims=True) + k.mean()

    traces = (np.trace(centred(k_aa)) + np.trace(centred(k_bb))) / (n - 1)
    root_trace = float(np.linalg.svd(centred(k_ab) / (n - 1), compute_uv=False).sum())
    mean_sq = shift_sq + 2 * (shift_a.mean() - shift_b.mean()) + k_aa.mean() - 2 * k_ab.mean() + k_bb.mean()
    return float(max(mean_sq + traces - 2 * root_trace, 0.0))


class PairedFeatures:
    """Feature statistics of targets and of their reconstructions, and the Fréchet distance between them.

    ``cache_key`` names the feature network: metrics that share it (the tokenizers and the baseline
    measured on one batch) compute the targets' features once, through ``EvalBatch.target_features``.
    The rows each sample contributes are counted, so ``bootstrap`` resamples whole samples (all the
    frames of a clip together).
    """

    def __init__(self, cache_key: str) -> None:
        self.cache_key = cache_key
        self.targets, self.reconstructions = GaussianStats(), GaussianStats()
        self.rows_per_sample: list[int] = []

    @property
    def count(self) -> int:
        return self.targets.count

    def add(self, batch: EvalBatch, features: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Add ``features`` of the batch's targets and reconstructions (computed once when they are the same)."""
        target = batch.target_features.get(self.cache_key)
        if target is None:
            target = batch.target_features[self.cache_key] = features(batch.target)
        self.targets.add(target)
        self.reconstructions.add(target if batch.reconstruction is batch.target else features(batch.reconstruction))
        self.rows_per_sample += [target.shape[0] // batch.target.shape[0]] * batch.target.shape[0]

    def distance(self) -> float:
        return frechet_distance_of(self.targets, self.reconstructions)

    def bootstrap(self, resamples: np.ndarray) -> np.ndarray | None:
        """The distance for each row of sample indices ``resamples`` (R, n); None once the rows are no longer kept."""
        a, b = self.targets, self.reconstructions
        if a.rows is None or b.rows is None or a.shift is None or b.shift is None or a.count < 2:
            return None
        rows_a, rows_b = np.concatenate(a.rows), np.concatenate(b.rows)  # (N, D) each, around their shifts
        d = a.shift - b.shift
        k_aa, k_ab, k_bb = rows_a @ rows_a.T, rows_a @ rows_b.T, rows_b @ rows_b.T
        along_a, along_b = rows_a @ d, rows_b @ d
        starts = np.cumsum([0, *self.rows_per_sample])
        values = []
        for samples in resamples:
            rows = np.concatenate([np.arange(starts[s], starts[s + 1]) for s in samples])
            grid = np.ix_(rows, rows)
            values.append(frechet_distance_of_rows(k_aa[grid], k_ab[grid], k_bb[grid], along_a[rows], along_b[rows], float(d @ d)))
        return np.array(values)


def frechet_distance_from_features(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets x (N, D) and y (M, D)."""
    a, b = GaussianStats(), GaussianStats()
    a.add(x)
    b.add(y)
    return frechet_distance_of(a, b)
