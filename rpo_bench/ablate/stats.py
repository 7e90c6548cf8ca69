"""Intervals and power for the report: seeds (t), prompts (bootstrap), and the paired
seeds x prompts design (variance components, MDE, hierarchical bootstrap)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


# --- the paired seeds x prompts design ----------------------------------------------------
#
# A comparison A - B at one noise level is an S x P table d[s, i] = y_A(s, i) - y_B(s, i):
# both arms are evaluated on the same P prompts, and seed s of either arm shares the same
# noise flips (one judging pass per (p, seed)), so rows and columns are both paired.

Z_MDE = float(stats.norm.ppf(0.975) + stats.norm.ppf(0.8))  # 5% two-sided, 80% power: 2.80


@dataclass(frozen=True)
class Power:
    """The mean paired difference, its standard error from variance components, and the
    minimum detectable effect (same units as the differences).

    var_seed is None with one seed (not measured); var_prompt is None with one seed or one
    prompt, where the prompt and residual components cannot be told apart and their sum is
    reported in var_resid."""

    delta: float
    se: float | None
    mde: float | None
    n_seeds: int
    n_prompts: int
    var_seed: float | None
    var_prompt: float | None
    var_resid: float | None

    @property
    def seed_variance_measured(self) -> bool:
        return self.var_seed is not None


def _table(d: Any) -> np.ndarray:
    d = np.asarray(d, dtype=float)
    d = d[None, :] if d.ndim == 1 else d
    if d.ndim != 2 or d.size == 0 or np.isnan(d).any():
        raise ValueError("expected a non-empty seeds x prompts table without NaN")
    return d


def power(d: Any) -> Power:
    """Variance components and MDE of the mean of an S x P paired table (seeds x prompts).

    Model (crossed random effects; prompts are shared by the seeds, so a prompt's effect
    repeats in every row): d[s, i] = Δ + a_s + b_i + e_si with Var a = σ²_seed,
    Var b = σ²_prompt, Var e = σ²_resid. The grand mean Δ̂ then has

        Var(Δ̂) = σ²_seed / S + σ²_prompt / P + σ²_resid / (S·P).

    A nested model (prompts drawn anew per seed) would put σ²_prompt under S·P and
    understate Var(Δ̂) when S > 1. The components come from the two-way ANOVA without
    replication (method of moments, truncated at 0):

        MS_seed = P·Σ_s (d̄_s. - d̄)² / (S-1),  MS_prompt = S·Σ_i (d̄_.i - d̄)² / (P-1),
        MS_resid = Σ_si (d_si - d̄_s. - d̄_.i + d̄)² / ((S-1)(P-1)),
        σ²_resid = MS_resid, σ²_seed = (MS_seed - MS_resid)/P, σ²_prompt = (MS_prompt - MS_resid)/S.

    With one seed, σ²_seed is not measured and Var(Δ̂) = s²_d / P (the sample variance of
    the per-prompt differences: prompt and residual together) understates it by σ²_seed.
    With one prompt, symmetrically, Var(Δ̂) = s²_d / S. MDE = (z_0.975 + z_0.8)·SE, the true
    difference a two-sided 5% test detects with 80% probability (normal approximation:
    optimistic with few seeds, where σ²_seed has S - 1 degrees of freedom).
    """
    d = _table(d)
    n_s, n_p = d.shape
    mean = float(d.mean())
    var_seed = var_prompt = var_resid = None
    if n_s > 1 and n_p > 1:
        rows, cols = d.mean(axis=1), d.mean(axis=0)
        ms_seed = n_p * ((rows - mean) ** 2).sum() / (n_s - 1)
        ms_prompt = n_s * ((cols - mean) ** 2).sum() / (n_p - 1)
        resid = d - rows[:, None] - cols[None, :] + mean
        var_resid = float((resid**2).sum() / ((n_s - 1) * (n_p - 1)))
        var_seed = float(max(0.0, (ms_seed - var_resid) / n_p))
        var_prompt = float(max(0.0, (ms_prompt - var_resid) / n_s))
        var = var_seed / n_s + var_prompt / n_p + var_resid / (n_s * n_p)
    elif n_s > 1:  # one prompt: seed and residual together
        var_seed = float(d[:, 0].var(ddof=1))
        var = var_seed / n_s
    elif n_p > 1:  # one seed: prompt and residual together, seed unmeasured
        var_resid = float(d[0].var(ddof=1))
        var = var_resid / n_p
    else:
        return Power(mean, None, None, 1, 1, None, None, None)
    se = float(np.sqrt(var))
    return Power(mean, se, Z_MDE * se, n_s, n_p, var_seed, var_prompt, var_resid)


def seeds_needed(p: Power, effect: float, max_seeds: int = 1000) -> int | None:
    """The fewest seeds (P prompts kept) whose MDE is at most `effect`; None if even
    `max_seeds` do not suffice (the prompt term alone is too large: more prompts needed)
    or the seed component is not measured."""
    if p.var_seed is None or p.var_prompt is None or p.var_resid is None:
        return None
    budget = (effect / Z_MDE) ** 2 - p.var_prompt / p.n_prompts
    if budget <= 0:
        return None
    n = int(np.ceil((p.var_seed + p.var_resid / p.n_prompts) / budget - 1e-12))
    return max(n, 1) if n <= max_seeds else None


def hierarchical_bootstrap(d: Any, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """mean(d) and its 95% percentile interval for an S x P paired table (seeds x prompts).

    Each resample draws S seeds and, independently, P prompts with replacement, and takes
    the mean of the crossed sub-table d[seeds][:, prompts]: one prompt draw serves every
    seed (and both arms, which d already pairs), as the prompts are shared in the design
    (the crossed "pigeonhole" bootstrap, Owen 2007: it counts σ²_resid up to three times
    instead of once, so it errs wide, while S resampled seeds understate σ²_seed by
    (S-1)/S). With one seed only prompts are resampled, the draws equal
    `paired_bootstrap`'s, and the interval leaves the seed-to-seed variance out.
    """
    d = _table(d)
    n_s, n_p = d.shape
    rng = np.random.default_rng(seed)
    # prompts first, so one seed reproduces paired_bootstrap's draws exactly
    prompts = rng.integers(0, n_p, size=(n_boot, n_p))
    weights_p = np.stack([np.bincount(r, minlength=n_p) for r in prompts])  # (B, P)
    if n_s > 1:
        seeds = rng.integers(0, n_s, size=(n_boot, n_s))
        weights_s = np.stack([np.bincount(r, minlength=n_s) for r in seeds])  # (B, S)
    else:
        weights_s = np.ones((n_boot, 1))
    means = ((weights_s @ d) * weights_p).sum(axis=1) / (n_s * n_p)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)
