"""Controlled judge noise: flip each verdict with probability p, keep the true ones.

Whether verdict j of response i of sample s flips depends only on (seed, s, i, j): a
sha256 of those gives a uniform number u in [0, 1) and the verdict flips when u < p. So
the result does not depend on the order or batching of judging, and for one seed the
flips at p=0.1 are a subset of those at p=0.2: noise levels differ only by noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from rpo_bench.judge.verdicts import ConstraintJudge, VerdictRequest


def uniform(seed: int, sample_id: str, response_index: int, constraint_index: int) -> float:
    """A deterministic uniform draw in [0, 1) for one verdict."""
    key = f"{seed}\x1f{sample_id}\x1f{response_index}\x1f{constraint_index}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64


def add_noise(
    verdicts: Sequence[bool], p: float, seed: int, sample_id: str, response_index: int
) -> list[bool]:
    """The verdicts with each flipped with probability p (deterministically, see module)."""
    return [v != (uniform(seed, sample_id, response_index, j) < p) for j, v in enumerate(verdicts)]


class NoisyJudge(ConstraintJudge):
    """Wraps a judge; `judge_many` gives noisy verdicts, `judge_with_truth` both kinds."""

    def __init__(self, judge: ConstraintJudge, p: float, seed: int = 0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"noise p must be in [0, 1], got {p}")
        self.judge, self.p, self.seed = judge, p, seed
        self.name = f"{judge.name}+noise{p:g}"

    def judge_with_truth(
        self, requests: Sequence[VerdictRequest]
    ) -> list[tuple[list[bool] | None, list[bool] | None]]:
        """(noisy verdicts, true verdicts) per request; (None, None) where it is unjudged."""
        return [
            (
                None
                if true is None
                else add_noise(true, self.p, self.seed, r.sample_id, r.response_index),
                true,
            )  # fmt: skip
            for r, true in zip(requests, self.judge.judge_many(requests), strict=True)
        ]

    def judge_many(self, requests: Sequence[VerdictRequest]) -> list[list[bool] | None]:
        return [noisy for noisy, _ in self.judge_with_truth(requests)]


def noisy_rows(rows: Sequence[dict[str, Any]], p: float, seed: int) -> list[dict[str, Any]]:
    """The judging stage on sampled rows: each response's true verdicts (its
    `true_verdicts`, else its `verdicts`) flipped as `add_noise` says; the rows then hold
    the noisy `verdicts`, the `true_verdicts` (kept at p=0 too, so pair noise is measured
    there) and the judge's name as `NoisyJudge` gives it."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"noise p must be in [0, 1], got {p}")
    out = []
    for row in rows:
        base = str(row.get("judge", "")).split("+noise")[0]
        row = {**row, "noise": p, "judge": f"{base}+noise{p:g}" if p > 0 else base}
        responses = []
        for r, response in enumerate(row["responses"]):
            true = response.get("true_verdicts", response["verdicts"])
            noisy = None if true is None else add_noise(true, p, seed, row["id"], r)  # unjudged
            responses.append({**response, "verdicts": noisy, "true_verdicts": true})
        out.append({**row, "responses": responses})
    return out
