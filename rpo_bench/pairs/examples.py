"""Every grid strategy in one registry: the kind of example it builds and the loss it trains
with; building, and reading back, a pairs file of any kind."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rpo_bench.fields import field_error
from rpo_bench.jsonl import iter_rows
from rpo_bench.pairs import unpaired
from rpo_bench.pairs.pair import PAIR_FIELDS, Pair, build_pairs
from rpo_bench.pairs.strategy import STRATEGIES
from rpo_bench.pairs.turn import Turn

PREFERENCE = "preference"  # the kind of a row without a `kind` field: a (chosen, rejected) pair

# strategy -> example kind: preference pairs, or single responses (sft, kto)
KINDS: dict[str, str] = {
    **{name: PREFERENCE for name in STRATEGIES},
    **{name: kind for name, (kind, _) in unpaired.BUILDERS.items()},
}

# The loss each strategy trains with: the paper's DPO baselines use the plain sigmoid loss,
# strategies whose pairs carry a margin g the RPO loss, single responses the loss named
# after their kind. A config's `train.loss` overrides it.
LOSSES: dict[str, str] = {
    "rpo": "rpo",
    "rpo_one_way": "rpo",
    "drop_failed": "rpo",
    "dpo_count": "dpo",
    "dpo_perfect": "dpo",
    "iopo": "dpo",  # IOPO's pairs trained with the sigmoid loss, like the DPO baselines
    **{name: kind for name, (kind, _) in unpaired.BUILDERS.items()},
}

FIELDS = {PREFERENCE: PAIR_FIELDS, "sft": unpaired.SFT_FIELDS, "kto": unpaired.KTO_FIELDS}

Example = Pair | unpaired.Example


def kind_of(strategy: str) -> str:
    """The example kind of a grid strategy (`preference`, `sft`, `kto`)."""
    if strategy not in KINDS:
        raise ValueError(f"unknown pair strategy {strategy!r}; known: {', '.join(KINDS)}")
    return KINDS[strategy]


def build(turns: Sequence[Turn], strategy: str, **options: Any) -> list[Example]:
    """Pairs or single-response examples of any strategy; options as `build_pairs`."""
    if kind_of(strategy) == PREFERENCE:
        return list(build_pairs(turns, strategy, **options))
    return list(unpaired.build_examples(turns, strategy, **options))


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
