"""Multi-IF's per-turn metrics by language (pooled and averaged), with bootstrap intervals.

Each turn's reply is checked against that turn's cumulative instruction list with the
constraint library at language="auto", as Multi-IF's official scorer does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rpo_bench.evaluate.metrics import counts, from_counts
from rpo_bench.evaluate.multi_if.data import (
    ALL,
    AVERAGE,
    METRICS,
    TURNS,
    _parse_all,
    _responses,
    read_rows,
)
from rpo_bench.evaluate.verifiable import constraints_for, score


def score_rows(
    rows: Iterable[Mapping[str, Any]], *, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Score Multi-IF rows that carry `responses` (one reply per turn, "" for a skipped turn).

    Returns per-row verdicts, per-turn metrics by language (plus all_languages, pooled, and
    average, the unweighted mean over languages) and, under "ci95", seeded 95% bootstrap
    intervals for each turn's overall score.
    """
    return _score(list(enumerate(rows, 1)), "input", "row", resamples, seed)


def score_file(path: str | Path, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """`score_rows` on a CSV or JSONL file; errors name the file's line."""
    return _score(read_rows(path), str(path), "line", resamples, seed)


# ---- scoring -------------------------------------------------------------------------


def _as_dict(values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip((*METRICS, "overall"), values, strict=True)}


def _score(
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    source: str,
    unit: str,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    conversations, raws = _parse_all(rows, source, unit)
    out_rows = []
    # turn -> language -> per-conversation `counts` vectors
    groups: dict[int, dict[str, list[list[int]]]] = {k: {} for k in TURNS}
    for conv, raw in zip(conversations, raws, strict=True):
        replies = _responses(raw, conv)
        turns = []
        for k, turn in conv.present():
            verdict = score(
                constraints_for(turn.instruction_ids, turn.kwargs, "auto"), replies[k - 1]
            )
            strict, loose = verdict["inst_level_strict_acc"], verdict["inst_level_loose_acc"]
            turns.append({"turn": k, "strict": strict, "loose": loose})
            groups[k].setdefault(conv.language, []).append(counts(verdict))
        out_rows.append({"key": conv.key, "turns": turns})

    rng = np.random.default_rng(seed)
    by_turn, ci_by_turn = {}, {}
    for k in TURNS:
        if not groups[k]:
            continue
        table, ci = {}, {}
        samples = {}
        for language in sorted(groups[k]):
            items = np.array(groups[k][language])
            table[language] = _as_dict(from_counts(items.sum(axis=0)))
            # Stratified: each language keeps its size, as the unweighted average assumes.
            picks = rng.integers(0, len(items), size=(resamples, len(items)))
            samples[language] = items[picks].sum(axis=1)
            ci[language] = _interval(from_counts(samples[language])[:, -1])
        pooled = np.array([c for lang in groups[k].values() for c in lang]).sum(axis=0)
        table[ALL] = _as_dict(from_counts(pooled))
        table[AVERAGE] = _as_dict(np.mean([list(table[lang].values()) for lang in samples], axis=0))
        ci[ALL] = _interval(from_counts(sum(samples.values()))[:, -1])
        ci[AVERAGE] = _interval(np.mean([from_counts(s)[:, -1] for s in samples.values()], axis=0))
        by_turn[str(k)], ci_by_turn[str(k)] = table, ci
    return {
        "rows": out_rows,
        "turns": by_turn,
        "ci95": {
            "method": "percentile bootstrap over conversations, resampled within each language",
            "resamples": resamples,
            "seed": seed,
            "turns": ci_by_turn,
        },
    }


def _interval(values: np.ndarray) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]
