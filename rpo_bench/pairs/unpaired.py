"""Single-response examples from judged samples: the paper's SFT and KTO baselines.

An SFT example is (prompt, response); a KTO example is (prompt, response, desirable).
Prompts are rendered like pair prompts (`Rewriter.prompt`), from the turn's task and its
constraint list with some constraints reversed or left out, and identical verdict vectors
are merged first, as for every pair strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rpo_bench.data.prompt import Message
from rpo_bench.pairs.pair import Reverser, Rewriter, Rewritten, build_pairs, merged, unanimous
from rpo_bench.pairs.strategy import rewrite_failed, rpo
from rpo_bench.pairs.turn import AnyConstraint, JudgedTurn

KINDS = ("sft", "kto")  # the single-response example kinds, named after their losses
SFT_FIELDS = ("id", "kind", "prompt", "response", "strategy", "reversed")
KTO_FIELDS = (*SFT_FIELDS, "desirable")


@dataclass(frozen=True)
class Example:
    """One SFT or KTO example; indices refer to the turn's responses and constraints."""

    turn: JudgedTurn
    strategy: str
    response: int
    reversed: tuple[int, ...]  # constraints shown reversed
    dropped: tuple[int, ...]  # constraints left out of the prompt
    constraints: tuple[AnyConstraint, ...]  # the prompt's constraints, rewritten
    prompt: list[Message]
    desirable: bool | None = None  # KTO's label; None for SFT

    @property
    def kind(self) -> str:
        return "sft" if self.desirable is None else "kto"

    @property
    def id(self) -> str:
        label = "" if self.desirable is None else "+" if self.desirable else "-"
        return f"{self.turn.id}/{self.response}{label}"

    def to_row(self) -> dict[str, Any]:
        """The pairs-file row of an SFT (`kind: sft`) or KTO (`kind: kto`) example."""
        row = {
            "id": self.id,
            "kind": self.kind,
            "prompt": self.prompt,
            "response": self.turn.responses[self.response],
            "strategy": self.strategy,
            "reversed": list(self.reversed),
            "dropped": list(self.dropped),
            "turn": self.turn.id,
            "response_index": self.response,
        }
        if self.desirable is not None:
            row["desirable"] = self.desirable
        return row


def _skipped(turn: JudgedTurn, keep_unanimous: bool) -> set[int]:
    return set() if keep_unanimous else set(unanimous(turn.verdicts))


def _rewrite(
    turn: JudgedTurn, response: int, skip: set[int], rewriter: Rewriter
) -> tuple[set[int], set[int]]:
    """(reversed, dropped) original indices that make `response` pass every shown constraint."""
    shown = [c for c in range(len(turn.constraints)) if c not in skip]
    reversible = [rewriter.can_reverse(turn.constraints[c]) for c in shown]
    flipped, dropped = rewrite_failed([turn.verdicts[response][c] for c in shown], reversible)
    return {shown[c] for c in flipped}, skip | {shown[c] for c in dropped}


def sft_chosen(
    turns: Sequence[JudgedTurn], strategy: str = "sft_chosen", **options: Any
) -> list[Example]:
    """Each response the `rpo` pairs (same options) use as chosen, once, under its rewritten
    prompt: the one prompt it satisfies completely (Crab's constraint back-translation)."""
    seen, out = set(), []
    for p in build_pairs(turns, "rpo", rpo, **options):
        if (p.turn.id, p.chosen) not in seen:  # a chosen's prompt is the same in all its pairs
            seen.add((p.turn.id, p.chosen))
            out.append(
                Example(p.turn, strategy, p.chosen, p.reversed, p.dropped, p.constraints, p.prompt)
            )
    return out


def sft_golden(
    turns: Sequence[JudgedTurn],
    strategy: str = "sft_golden",
    *,
    keep_unanimous: bool = True,
    reverser: Reverser | None = None,
    **_: Any,
) -> list[Example]:
    """Per turn, its best-scoring response under the original prompt: most constraints
    passed, the earlier sample on ties, the rule `data.sample.kept_index` picks the golden
    history with (on the judged verdicts, so judge noise reaches it too)."""
    rewriter, out = Rewriter(reverser), []
    for turn in turns:
        scores = [sum(v) for v in turn.verdicts]
        skip = _skipped(turn, keep_unanimous)
        rewritten = rewriter.prompt(turn, set(), skip)
        out.append(Example(turn, strategy, scores.index(max(scores)), *rewritten))
    return out


def _labelled(turn: JudgedTurn, strategy: str, r: int, rewritten: Rewritten, ok: bool) -> Example:
    return Example(turn, strategy, r, *rewritten, desirable=ok)


def kto(
    turns: Sequence[JudgedTurn],
    strategy: str = "kto",
    *,
    keep_unanimous: bool = True,
    reverser: Reverser | None = None,
    **_: Any,
) -> list[Example]:
    """Every (merged) response under the original prompt: desirable when it passes every
    constraint shown, undesirable otherwise."""
    rewriter, out = Rewriter(reverser), []
    for turn in turns:
        skip = _skipped(turn, keep_unanimous)
        original = rewriter.prompt(turn, set(), skip)
        for r in merged(turn.verdicts):
            ok = all(v for c, v in enumerate(turn.verdicts[r]) if c not in skip)
            out.append(_labelled(turn, strategy, r, original, ok))
    return out


def kto_reversed(
    turns: Sequence[JudgedTurn],
    strategy: str = "kto_reversed",
    *,
    keep_unanimous: bool = True,
    reverser: Reverser | None = None,
    **_: Any,
) -> list[Example]:
    """Reversal for KTO: every (merged) response is desirable under its own rewritten prompt
    (failed constraints reversed, non-reversible ones left out, as in `rpo`) and, if it fails
    any, undesirable under the original one. A rewritten prompt left with no constraint
    teaches nothing about constraints and is not made (like an `rpo` pair of margin 0)."""
    rewriter, out = Rewriter(reverser), []
    for turn in turns:
        skip = _skipped(turn, keep_unanimous)
        original = rewriter.prompt(turn, set(), skip)
        for r in merged(turn.verdicts):
            flipped, dropped = _rewrite(turn, r, skip, rewriter)
            if not flipped and dropped == skip:  # passes everything: the prompts coincide
                out.append(_labelled(turn, strategy, r, original, True))
                continue
            if len(dropped) < len(turn.constraints):
                own = rewriter.prompt(turn, flipped, dropped)
                out.append(_labelled(turn, strategy, r, own, True))
            out.append(_labelled(turn, strategy, r, original, False))
    return out
