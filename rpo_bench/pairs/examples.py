"""Every strategy in one registry (its name, the loss it trains with, and how it builds its
examples), and reading back a pairs file of any kind."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rpo_bench.fields import field_error
from rpo_bench.jsonl import iter_rows, warn
from rpo_bench.pairs import strategy as plans
from rpo_bench.pairs import unpaired
from rpo_bench.pairs.pair import PAIR_FIELDS, Pair
from rpo_bench.pairs.pair import build_pairs as _build_pairs
from rpo_bench.pairs.turn import JudgedTurn

PREFERENCE = "preference"  # the kind of a row without a `kind` field: a (chosen, rejected) pair
FIELDS = {PREFERENCE: PAIR_FIELDS, "sft": unpaired.SFT_FIELDS, "kto": unpaired.KTO_FIELDS}

Example = Pair | unpaired.Example
Build = Callable[..., list[Example]]  # (turns, strategy name, **options) -> examples


def _paired(plan: plans.Strategy) -> Build:
    return lambda turns, name, **options: _build_pairs(turns, name, plan, **options)


def _shuffled(plan: plans.Strategy) -> Build:
    """A placebo: `plan`'s pairs, each with chosen and rejected swapped at probability 0.5
    (seeded by the build's seed and the pair), so no preference is left to learn. Trained
    like the others, it shows how far training alone moves a score."""

    def build(turns: Sequence[JudgedTurn], name: str, **options: Any) -> list[Example]:
        seed = options.get("seed", 0)
        return [
            replace(p, chosen=p.rejected, rejected=p.chosen)
            if random.Random(f"shuffle:{seed}:{p.id}").random() < 0.5
            else p
            for p in _build_pairs(turns, name, plan, **options)
        ]

    return build


def swap_prompts(
    turns: Sequence[JudgedTurn], name: str, plan: plans.Strategy, **options: Any
) -> tuple[list[Pair], int]:
    """`plan`'s pairs (built with `options`, as `_paired` builds them), each under the
    rewritten prompt of its mirror, the pair of the same turn with chosen and rejected
    swapped; and how many pairs were left out.

    A pair keeps its replies, margin and id; `prompt`, `reversed`, `dropped` and
    `constraints` become the mirror's. Where the mirror is not among the pairs (made with
    margin < min_margin, e.g. 0 once a non-reversible constraint is left out, or cut by
    max_pairs_per_turn), the prompt is one picked (seeded by the build's seed and the pair's
    id) from the turn's other rewritten prompts: those of all its `plan` pairs before the
    max_pairs_per_turn cap, less any that renders as the pair's own (so does a mirror
    whose prompt renders the same). A turn with no such prompt leaves the pair out; the
    count comes back as the second value.
    """
    seed = options.get("seed", 0)
    if options.get("reverser") is not None:  # one question per free text over both builds
        options = {**options, "reverser": functools.cache(options["reverser"])}
    pairs = _build_pairs(turns, name, plan, **options)
    pool = pairs
    if options.get("max_pairs_per_turn") is not None:
        pool = _build_pairs(turns, name, plan, **{**options, "max_pairs_per_turn": None})
    sides = {(p.turn.id, p.chosen, p.rejected): p for p in pairs}
    prompts: dict[str, dict[tuple[tuple[int, ...], tuple[int, ...]], Pair]] = {}
    for p in pool:  # a turn's rewritten prompts, one per (reversed, dropped), in pair order
        prompts.setdefault(p.turn.id, {}).setdefault((p.reversed, p.dropped), p)
    out, left_out = [], 0
    for p in pairs:
        shown = sides.get((p.turn.id, p.rejected, p.chosen))
        if shown is None or shown.prompt == p.prompt:  # (a repeated constraint may do that)
            others = [q for q in prompts[p.turn.id].values() if q.prompt != p.prompt]
            if not others:
                left_out += 1
                continue
            shown = random.Random(f"swap:{seed}:{p.id}").choice(others)
        out.append(
            replace(
                p,
                reversed=shown.reversed,
                dropped=shown.dropped,
                constraints=shown.constraints,
                prompt=shown.prompt,
            )
        )
    return out, left_out


def _swapped_prompts(plan: plans.Strategy) -> Build:
    """A control: `plan`'s pairs, each trained under its mirror's rewritten prompt (see
    `swap_prompts`), so the chosen reply fails the constraints it is shown. If this control
    learns as well as `rpo`, the model is not reading its constraints."""

    def build(turns: Sequence[JudgedTurn], name: str, **options: Any) -> list[Example]:
        pairs, left_out = swap_prompts(turns, name, plan, **options)
        if left_out:  # the statistics count only the pairs kept
            warn(
                f"{name}: {left_out} pair(s) left out: their turn has no mirror pair and "
                "no other rewritten prompt to show"
            )
        return list(pairs)

    return build


@dataclass(frozen=True)
class StrategySpec:
    """A strategy: the loss it trains with (a config's `train.loss` overrides it) and its
    builder. Its example kind follows from the loss, as `train.config.example_kind` maps it:
    the single-response losses read examples of their own name, every other loss pairs."""

    name: str
    loss: str
    build: Build

    @property
    def kind(self) -> str:
        return self.loss if self.loss in unpaired.KINDS else PREFERENCE


# The paper's DPO baselines train with the plain sigmoid loss, strategies whose pairs carry
# a margin g with the RPO loss, single responses with the loss named after their kind.
STRATEGIES: dict[str, StrategySpec] = {
    spec.name: spec
    for spec in (
        StrategySpec("rpo", "rpo", _paired(plans.rpo)),
        StrategySpec("rpo_one_way", "rpo", _paired(plans.rpo_one_way)),
        StrategySpec("drop_failed", "rpo", _paired(plans.drop_failed)),
        StrategySpec("dpo_count", "dpo", _paired(plans.dpo_count)),
        StrategySpec("dpo_perfect", "dpo", _paired(plans.dpo_perfect)),
        StrategySpec("dpo_shuffled", "dpo", _shuffled(plans.dpo_count)),  # a placebo
        StrategySpec("rpo_swapped_prompts", "rpo", _swapped_prompts(plans.rpo)),  # a control
        StrategySpec("iopo", "dpo", _paired(plans.iopo)),  # IOPO's pairs, like DPO's loss
        StrategySpec("sft_chosen", "sft", unpaired.sft_chosen),
        StrategySpec("sft_golden", "sft", unpaired.sft_golden),
        StrategySpec("kto", "kto", unpaired.kto),
        StrategySpec("kto_reversed", "kto", unpaired.kto_reversed),
    )
}
PAIR_STRATEGIES = [name for name, spec in STRATEGIES.items() if spec.kind == PREFERENCE]


def strategy(name: str) -> StrategySpec:
    """The registered strategy called `name`; a ValueError lists the known ones."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown pair strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def kind_of(name: str) -> str:
    """The example kind of a strategy (`preference`, `sft`, `kto`)."""
    return strategy(name).kind


def build(turns: Sequence[JudgedTurn], name: str, **options: Any) -> list[Example]:
    """Pairs or single-response examples of any strategy; options as `pair.build_pairs`."""
    return strategy(name).build(turns, name, **options)


def build_pairs(turns: Sequence[JudgedTurn], name: str, **options: Any) -> list[Pair]:
    """The (chosen, rejected) pairs of a preference strategy, by name."""
    if kind_of(name) != PREFERENCE:
        raise ValueError(f"{name!r} builds {kind_of(name)} examples, not pairs; use build()")
    return build(turns, name, **options)


def load_pairs(path: str | Path, *, as_messages: bool = False) -> Any:
    """A pairs file (of any one kind) as a `datasets.Dataset`.

    as_messages=True wraps `chosen` and `rejected` (or `response`) in one assistant message
    each, the conversational form TRL's trainers expect next to a message-list prompt.
    """
    import datasets

    rows = []
    for line, row in iter_rows(path):
        kind = row.get("kind", PREFERENCE)
        if kind not in FIELDS:
            raise field_error(f"{path}:{line}", "kind", f"is {kind!r}, not one of {list(FIELDS)}")
        for key in FIELDS[kind]:
            if key not in row:
                raise field_error(f"{path}:{line}", key, "is missing")
        if as_messages:
            for key in ("chosen", "rejected", "response"):
                if key in row:
                    row[key] = [{"role": "assistant", "content": row[key]}]
        rows.append(row)
    return datasets.Dataset.from_list(rows)
