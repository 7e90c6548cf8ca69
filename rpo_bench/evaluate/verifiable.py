"""Scoring of responses against verifiable instruction lists (IFEval-style metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rpo_bench.constraints import Constraint, from_ifeval
from rpo_bench.jsonl import read_jsonl  # noqa: F401  (re-exported for tasks and scripts)


def score_verdicts(verdicts: Sequence[bool]) -> dict[str, Any]:
    """The same four metrics from a judge's verdicts (free-text constraints, judged by an
    LLM): strict and loose alike, as a judge gives one verdict per constraint."""
    followed = {"prompt_level": all(verdicts), "inst_level": list(verdicts)}
    return {f"{level}_{mode}_acc": value for level, value in followed.items()
            for mode in ("strict", "loose")}  # fmt: skip


def constraints_for(
    instruction_ids: Sequence[str], kwargs: Sequence[dict | None], language: str | None = None
) -> list[Constraint]:
    if len(instruction_ids) != len(kwargs):
        raise ValueError(f"{len(instruction_ids)} instruction ids but {len(kwargs)} kwargs entries")
    pairs = zip(instruction_ids, kwargs, strict=True)
    return [from_ifeval(i, kw, language=language) for i, kw in pairs]


def score(constraints: Sequence[Constraint], response: str) -> dict[str, Any]:
    """IFEval's four per-prompt metrics for one response."""
    strict = [c.check(response) for c in constraints]
    loose = [c.check_loose(response) for c in constraints]
    return {
        "prompt_level_strict_acc": all(strict),
        "inst_level_strict_acc": strict,
        "prompt_level_loose_acc": all(loose),
        "inst_level_loose_acc": loose,
    }
