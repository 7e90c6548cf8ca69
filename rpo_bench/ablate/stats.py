"""Intervals for the report: over seeds (t), over prompts (bootstrap), paired deltas."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def seed_interval(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% t-interval over seeds (None for one seed)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()), None
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(half)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """mean(a - b) and its 95% percentile interval, resampling prompts (pairs kept together)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        raise ValueError("paired_bootstrap needs at least one prompt")
    idx = np.random.default_rng(seed).integers(0, d.size, size=(n_boot, d.size))
    lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def bootstrap_mean(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> tuple:
    """mean and its 95% percentile interval, resampling prompts."""
    return paired_bootstrap(values, np.zeros(len(values)), n_boot, seed)
