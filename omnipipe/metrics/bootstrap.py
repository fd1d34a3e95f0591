"""Bootstrap intervals over evaluation samples: resample the samples with replacement, recompute, take percentiles.

One set of resamples per group of samples is shared by every version measured on them (tokenizers and
baseline), so their intervals come from the same resampled sets. Per-sample metrics recompute their
mean; set metrics (FID, FVD) recompute from the resampled features (``bootstrap(resamples)``).
"""
from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95


def draw_resamples(count: int, replicates: int, seed: int) -> np.ndarray:
    """Sample indices (replicates, count), drawn with replacement, deterministic for a seed."""
    return np.random.default_rng(seed).integers(0, count, size=(replicates, count))


def mean_replicates(values: np.ndarray, resamples: np.ndarray) -> np.ndarray:
    """The mean of per-sample ``values`` (n,) over each resample (R, n) → (R,)."""
    return np.asarray(values, dtype=np.float64)[resamples].mean(axis=1)


def percentile_interval(replicates: np.ndarray) -> list[float] | None:
    """The central ``CONFIDENCE`` percentile interval [low, high] of the finite replicate values (None for fewer than 2)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size < 2:
        return None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return [float(low), float(high)]
