"""Preference pairs from sampled turns: merge, choose columns, plan, rewrite, render.

Every pair's prompt is rendered by `rpo_bench.data.prompt.render` from the turn's task
and its rewritten constraint list (reversed constraints by their own description), so
the prompt says exactly what the chosen response was judged to satisfy.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rpo_bench.constraints import Constraint
from rpo_bench.data.prompt import Message, render
from rpo_bench.pairs.strategy import Plan, Strategy
from rpo_bench.pairs.turn import AnyConstraint, JudgedTurn, TextConstraint

# free-text constraint -> its reversal, or None where it has none that can be used (an
# LLM reversal that failed validation): such a constraint is treated as non-reversible
Reverser = Callable[[str], str | None]
PAIR_FIELDS = ("id", "prompt", "chosen", "rejected", "margin", "strategy", "reversed")


@dataclass(frozen=True)
class Pair:
    """One training pair; indices refer to the turn's responses and constraints."""

    turn: JudgedTurn
    strategy: str
    chosen: int
    rejected: int
    margin: int
    reversed: tuple[int, ...]  # constraints shown reversed
    dropped: tuple[int, ...]  # constraints left out of the prompt
    constraints: tuple[AnyConstraint, ...]  # the prompt's constraints, rewritten
    prompt: list[Message]
    # input-side pairs (IOPO): the rejected side's own prompt, the original one, which
    # reverses nothing and leaves out `rejected_dropped`
    rejected_prompt: list[Message] | None = None
    rejected_dropped: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        side = "@original" if self.rejected_prompt is not None else ""
        return f"{self.turn.id}/{self.chosen}>{self.rejected}{side}"

    def to_row(self) -> dict[str, Any]:
        """The pairs-file row (the contract other stages read); an input-side pair adds
        `chosen_prompt` (= `prompt`) and `rejected_prompt`."""
        sides = {}
        if self.rejected_prompt is not None:
            sides = {"chosen_prompt": self.prompt, "rejected_prompt": self.rejected_prompt}
        return {
            "id": self.id,
            "prompt": self.prompt,
            "chosen": self.turn.responses[self.chosen],
            "rejected": self.turn.responses[self.rejected],
            "margin": self.margin,
            "strategy": self.strategy,
            "reversed": list(self.reversed),
            "dropped": list(self.dropped),
            "turn": self.turn.id,
            "chosen_index": self.chosen,
            "rejected_index": self.rejected,
            **sides,
        }


def merged(verdicts: Sequence[Sequence[bool]]) -> list[int]:
    """One response per distinct verdict vector: the first in sample order."""
    first: dict[tuple[bool, ...], int] = {}
    for r, vector in enumerate(verdicts):
        first.setdefault(tuple(vector), r)
    return sorted(first.values())


def unanimous(verdicts: Sequence[Sequence[bool]]) -> list[int]:
    """Constraints with the same verdict for every response: they separate no two samples."""
    return [c for c in range(len(verdicts[0])) if len({v[c] for v in verdicts}) == 1]


# (reversed, dropped, shown constraints, rendered prompt), the fields every example shares
Rewritten = tuple[tuple[int, ...], tuple[int, ...], tuple[AnyConstraint, ...], list[Message]]


class Rewriter:
    """Reverses constraints; free-text reversals are asked once per text."""

    def __init__(self, reverser: Reverser | None):
        self.reverser, self.memo = reverser, {}

    def can_reverse(self, c: AnyConstraint) -> bool:
        if isinstance(c, Constraint):
            return c.reversible
        return self.reverser is not None and self._reversal(c.text) is not None

    def reverse(self, c: AnyConstraint) -> AnyConstraint:
        if isinstance(c, Constraint):
            rev = c.reverse()
            assert rev is not None  # can_reverse said so
            return rev
        reversal = self._reversal(c.text)
        assert reversal is not None  # can_reverse said so
        return TextConstraint(reversal)

    def _reversal(self, text: str) -> str | None:
        if text not in self.memo:
            self.memo[text] = self.reverser(text)  # type: ignore[misc]
        return self.memo[text]

    def prompt(self, turn: JudgedTurn, flipped: set[int], dropped: set[int]) -> Rewritten:
        """The turn's prompt with `flipped` constraints reversed and `dropped` left out."""
        shown = tuple(
            self.reverse(c) if k in flipped else c
            for k, c in enumerate(turn.constraints)
            if k not in dropped
        )
        prompt = render(turn.task, shown, turn.slot, turn.system, turn.history)
        return tuple(sorted(flipped)), tuple(sorted(dropped)), shown, prompt


def _capped(plans: list[tuple[int, Plan]], limit: int, rng: random.Random):
    """At most `limit` plans: larger margins first (they train better, paper Table 2),
    ties broken by a seeded shuffle; the kept plans stay in their original order."""
    order = sorted(plans, key=lambda kp: (-kp[1].margin, rng.random()))
    keep = {k for k, _ in order[:limit]}
    return [kp for kp in plans if kp[0] in keep]


def _turn_pairs(
    turn: JudgedTurn,
    strategy: str,
    plan: Strategy,
    rewriter: Rewriter,
    min_margin: int,
    max_pairs: int | None,
    seed: int,
    keep_unanimous: bool,
) -> list[Pair]:
    reps = merged(turn.verdicts)
    skip = set() if keep_unanimous else set(unanimous(turn.verdicts))
    cols = [c for c in range(len(turn.constraints)) if c not in skip]
    vectors = [[turn.verdicts[r][c] for c in cols] for r in reps]
    reversible = [rewriter.can_reverse(turn.constraints[c]) for c in cols]
    plans = [(k, p) for k, p in enumerate(plan(vectors, reversible)) if p.margin >= min_margin]
    if max_pairs is not None and len(plans) > max_pairs:
        plans = _capped(plans, max_pairs, random.Random(f"{seed}:{turn.id}"))
    pairs = []
    for _, p in plans:
        prompt = rewriter.prompt(
            turn, {cols[c] for c in p.reversed}, skip | {cols[c] for c in p.dropped}
        )
        original = {}
        if p.input_side:
            _, dropped, _, rejected_prompt = rewriter.prompt(turn, set(), skip)
            original = {"rejected_prompt": rejected_prompt, "rejected_dropped": dropped}
        pairs.append(
            Pair(turn, strategy, reps[p.chosen], reps[p.rejected], p.margin, *prompt, **original)
        )
    return pairs


def build_pairs(
    turns: Iterable[JudgedTurn],
    strategy: str,
    plan: Strategy,
    *,
    min_margin: int = 1,
    max_pairs_per_turn: int | None = None,
    seed: int = 0,
    keep_unanimous: bool = True,
    reverser: Reverser | None = None,
) -> list[Pair]:
    """Pairs of every turn, in turn order: `plan` is the `strategy`'s (by name:
    `rpo_bench.pairs.build_pairs`).

    min_margin: pairs with a smaller margin are dropped (>= 1; margin 0 is no preference).
    max_pairs_per_turn: keep at most this many per turn, larger margins first, ties by a
    shuffle seeded with (seed, turn id), so a turn's choice does not depend on the others.
    keep_unanimous: False leaves out of every prompt of a turn the constraints on which
    all its responses agree (recorded in `dropped`); they make no difference to any pair.
    reverser: reverses free-text constraints; without it they are treated like the
    non-reversible ids (left out of a prompt whose chosen response failed them).
    """
    if min_margin < 1:
        raise ValueError(f"min_margin must be >= 1, got {min_margin}")
    if max_pairs_per_turn is not None and max_pairs_per_turn < 1:
        raise ValueError(f"max_pairs_per_turn must be >= 1, got {max_pairs_per_turn}")
    rewriter = Rewriter(reverser)
    return [
        pair
        for turn in turns
        for pair in _turn_pairs(
            turn, strategy, plan, rewriter, min_margin, max_pairs_per_turn, seed, keep_unanimous
        )
    ]
