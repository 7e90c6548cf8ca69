"""Pair strategies: which (chosen, rejected) pairs a turn's verdict vectors yield.

A strategy sees the turn's DISTINCT verdict vectors (identical vectors merged first,
for every strategy, so yields compare like with like) and which constraints can be
reversed, and returns plans in those local indices. It never sees text: prompts are
rendered from the plans by `rpo_bench.pairs.pair`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import permutations

Vector = Sequence[bool]


@dataclass(frozen=True)
class Plan:
    """One pair in a strategy's local indices.

    `reversed`: constraints shown reversed; `dropped`: constraints left out of the
    prompt; `margin`: how many of the prompt's constraints the rejected response fails
    beyond the chosen one (for `rpo`, exactly how many it fails). `input_side`: the
    rejected side is the chosen response itself under the original prompt (IOPO).
    """

    chosen: int
    rejected: int
    reversed: tuple[int, ...]
    dropped: tuple[int, ...]
    margin: int
    input_side: bool = False


Strategy = Callable[[Sequence[Vector], Sequence[bool]], list[Plan]]


def rewrite_failed(
    vector: Vector, reversible: Sequence[bool], *, reverse: bool = True
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(reversed, dropped): a response's failed constraints, reversed where they can be
    (and `reverse` asks for it), else left out, so it passes every constraint shown."""
    failed = [c for c, ok in enumerate(vector) if not ok]
    flipped = tuple(c for c in failed if reverse and reversible[c])
    return flipped, tuple(c for c in failed if c not in flipped)


def _rewritten(
    vectors: Sequence[Vector], i: int, j: int, reversible: Sequence[bool], *, reverse: bool
) -> Plan:
    """Plan with the chosen's failed constraints reversed (if it can) or dropped.

    Under such a prompt the chosen passes every constraint, so the rejected fails
    exactly the kept constraints on which the two vectors differ.
    """
    flipped, dropped = rewrite_failed(vectors[i], reversible, reverse=reverse)
    margin = sum(
        1
        for c, (a, b) in enumerate(zip(vectors[i], vectors[j], strict=True))
        if a != b and c not in dropped
    )
    return Plan(i, j, flipped, dropped, margin)


def rpo(vectors: Sequence[Vector], reversible: Sequence[bool]) -> list[Plan]:
    """The authors' method: for every two distinct vectors, both directions. Each response
    becomes the chosen one under its own rewritten prompt, in which every constraint it
    failed is replaced by its exact reversal, so it satisfies all of them and the other
    response fails exactly the g constraints on which the two differ (margin g). A failed
    constraint without a reversal (the four non-reversible ids, or free text without a
    reverser) is left out of that prompt instead; the margin then counts only the
    constraints kept, and a pair whose margin falls to 0 is not made."""
    return [
        _rewritten(vectors, i, j, reversible, reverse=True)
        for i, j in permutations(range(len(vectors)), 2)
    ]


def rpo_one_way(vectors: Sequence[Vector], reversible: Sequence[bool]) -> list[Plan]:
    """Reversal without the second direction: of two responses only the one satisfying
    more constraints becomes chosen, with its failed constraints reversed as in `rpo`;
    ties yield nothing. Its pairs are exactly `dpo_count`'s pairs with rewritten
    prompts, so it separates the effect of reversal from that of the extra direction."""
    return [
        _rewritten(vectors, i, j, reversible, reverse=True)
        for i, j in permutations(range(len(vectors)), 2)
        if sum(vectors[i]) > sum(vectors[j])
    ]


def drop_failed(vectors: Sequence[Vector], reversible: Sequence[bool]) -> list[Plan]:
    """Removal instead of reversal: both directions as in `rpo`, but the chosen's failed
    constraints are left out of its prompt rather than reversed. The chosen then satisfies
    every constraint shown; the margin is the number of them the rejected fails, and a
    pair with margin 0 (the rejected passes everything the chosen passes) is not made.
    It answers whether reversal is needed or removal is enough."""
    return [
        _rewritten(vectors, i, j, reversible, reverse=False)
        for i, j in permutations(range(len(vectors)), 2)
    ]


def dpo_count(vectors: Sequence[Vector], reversible: Sequence[bool]) -> list[Plan]:
    """Ordinary preference building: the original instruction, the response satisfying
    more constraints is chosen, margin = the difference of the two counts. Every two
    responses with different counts make one pair; ties are dropped, and the chosen may
    fail constraints (even some the rejected passes)."""
    return [
        Plan(i, j, (), (), sum(vectors[i]) - sum(vectors[j]))
        for i, j in permutations(range(len(vectors)), 2)
        if sum(vectors[i]) > sum(vectors[j])
    ]


def dpo_perfect(vectors: Sequence[Vector], reversible: Sequence[bool]) -> list[Plan]:
    """Perfect-chosen preference building: the original instruction, the chosen must
    satisfy every constraint; each other response is a rejected one, margin = the number
    of constraints it fails. A turn without a perfect sample yields nothing."""
    return [
        Plan(i, j, (), (), len(vectors[j]) - sum(vectors[j]))
        for i, j in permutations(range(len(vectors)), 2)
        if all(vectors[i])
    ]


def iopo(vectors: Sequence[Vector], reversible: Sequence[bool]) -> list[Plan]:
    """Input-side pairs (IOPO, arXiv 2411.06208): one response, two prompts. Every response
    that fails a constraint is preferred under its own rewritten prompt (failed constraints
    reversed, or left out where they cannot be, as `rpo`'s chosen) over the original prompt,
    which it violates; margin = the constraints it fails there. A response passing
    everything yields nothing (its two prompts would coincide)."""
    plans = []
    for i, vector in enumerate(vectors):
        flipped, dropped = rewrite_failed(vector, reversible)
        if flipped or dropped:
            plans.append(Plan(i, i, flipped, dropped, len(flipped) + len(dropped), True))
    return plans
