"""IFEval-style accuracies: the one place they are aggregated (lm-eval tasks, reports, Multi-IF).

A document's scores are IFEval's four per-prompt metrics: prompt-level a bool (None where
the prompt could not be checked whole), instruction-level a list of bools. Prompt-level
accuracy is the mean over scored prompts; instruction-level is pooled over all checked
instructions. An empty input gives NaN, never an error or 0.

`counts` reduces a document to (followed, checked) per metric; summed over documents,
`from_counts` turns them into the same accuracies (a test ties the two). That is how a
bootstrap resamples thousands of times cheaply (Multi-IF's intervals).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

METRICS = (
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
)


def prompt_level_acc(items: Sequence[bool | None]) -> float:
    """Share of scored prompts (None left out) that follow every instruction."""
    judged = [x for x in items if x is not None]
    return sum(judged) / len(judged) if judged else math.nan


def inst_level_acc(items: Sequence[Sequence[bool]]) -> float:
    """Share of all checked instructions followed, pooled over prompts."""
    flat = [x for sub in items for x in sub]
    return sum(flat) / len(flat) if flat else math.nan


def count(items: Sequence[int]) -> int:
    return sum(items)


def accuracy(metric: str, items: Sequence[Any]) -> float:
    return (inst_level_acc if metric.startswith("inst") else prompt_level_acc)(items)


def overall(items: Sequence[Sequence[Any]]) -> float:
    """The mean of the four accuracies, each aggregated over documents first (Multi-IF's
    turn score); `items` holds each document's four metrics in METRICS order."""
    return sum(accuracy(m, [i[k] for i in items]) for k, m in enumerate(METRICS)) / len(METRICS)


def counts(row: Mapping[str, Any]) -> list[int]:
    """(followed, checked) for each metric in METRICS order: 8 integers. A prompt-level
    None (not scored) counts (0, 0), as `prompt_level_acc` leaves it out."""
    out: list[int] = []
    for m in METRICS:
        v = row[m]
        if isinstance(v, list | tuple):
            out += [sum(map(bool, v)), len(v)]
        else:
            out += [0, 0] if v is None else [int(bool(v)), 1]
    return out


def from_counts(totals: Any) -> np.ndarray:
    """The four accuracies then their mean (`overall`), from counts summed over documents
    (the last axis holds `counts`' 8 numbers; leading axes are e.g. bootstrap resamples)."""
    t = np.asarray(totals, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 checked: NaN, as documented
        acc = t[..., 0::2] / t[..., 1::2]
    return np.concatenate([acc, acc.mean(axis=-1, keepdims=True)], axis=-1)


def aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The four accuracies over per-document rows, and `overall`, their mean."""
    out = {m: accuracy(m, [r[m] for r in rows]) for m in METRICS}
    out["overall"] = sum(out.values()) / len(METRICS)
    return out


def prompt_score(row: Mapping[str, Any]) -> float | None:
    """One number per document for paired comparisons: the mean of the four metrics,
    instruction-level as this document's share followed. None if it could not be scored."""
    parts = []
    for m in METRICS:
        v = row[m]
        if isinstance(v, list):
            if not v:
                return None
            v = sum(v) / len(v)
        if v is None:
            return None
        parts.append(float(v))
    return sum(parts) / len(parts)
