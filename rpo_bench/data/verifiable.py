"""Multi-turn, multi-constraint training conversations built from the vendored seed tasks.

Each turn is a user request (a seed task, the seed's own follow-up turn, or a generic
follow-up) plus verifiable constraints. As in Multi-IF the constraint lists are
cumulative: turn t keeps every constraint of turn t-1 and adds `k` new ones, and no two
constraints of a turn contradict each other (see `constraints.conflicts`). Seed tasks are
split into "train" and "heldout" by a hash of their id, so the two sets never share a task
whatever the sampling seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rpo_bench.constraints import Constraint, from_ifeval
from rpo_bench.constraints.conflicts import conflict
from rpo_bench.constraints.specs import AT_LEAST, LESS_THAN
from rpo_bench.data.conversations import (
    SPLITS,
    PlannedTurn,
    TrainingConversation,
    write_conversations,
)
from rpo_bench.data.prompt import SLOTS, Slot
from rpo_bench.jsonl import iter_rows
from rpo_bench.paths import resource

HELDOUT_SHARE = 5  # one seed task in five is held out

# Used where a seed task has no follow-up turn of its own. Written for this project.
FOLLOW_UPS = (
    "Now rewrite it for a younger reader.",
    "Make your previous answer shorter and clearer.",
    "Explain the same thing again to a complete beginner.",
    "Add one more example to your previous answer.",
    "Rewrite your previous answer in a more formal tone.",
    "Now give the main point of your answer once more, in other words.",
)

_KEYWORDS = ("example", "simple", "future", "balance", "detail", "reason", "team", "plan", "idea")
_FORBIDDEN = ("very", "really", "good", "thing", "just", "also", "important", "many")
_END_PHRASES = (
    "Any other questions?",
    "That is all.",
    "Hope this helps!",
    "Thank you for reading.",
)


def _threshold(name: str, relation: str, values: Sequence[int]) -> Callable[[random.Random], dict]:
    return lambda rng: {name: rng.choice(values), relation: rng.choice((AT_LEAST, LESS_THAN))}


# The ids a training turn draws from, with their kwarg samplers. Chosen so that a tiny model
# can plausibly pass or fail each check; excluded: repeat_prompt, two_responses,
# constrained_response, response_language, the paragraph ids (long or odd for short replies).
SAMPLERS: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "change_case:english_lowercase": lambda rng: {},
    "change_case:english_capital": lambda rng: {},
    "change_case:capital_word_frequency": lambda rng: {
        "capital_frequency": rng.choice((2, 3, 5)),
        "capital_relation": rng.choice((AT_LEAST, LESS_THAN)),
    },
    "punctuation:no_comma": lambda rng: {},
    "length_constraints:number_words": lambda rng: (
        {"num_words": rng.choice((10, 20, 40, 80)), "relation": AT_LEAST}
        if rng.random() < 0.5
        else {"num_words": rng.choice((30, 50, 100, 200)), "relation": LESS_THAN}
    ),
    "length_constraints:number_sentences": lambda rng: (
        {"num_sentences": rng.choice((2, 3, 5)), "relation": AT_LEAST}
        if rng.random() < 0.5
        else {"num_sentences": rng.choice((3, 5, 8)), "relation": LESS_THAN}
    ),
    "keywords:existence": lambda rng: {"keywords": rng.sample(_KEYWORDS, rng.choice((1, 2)))},
    "keywords:forbidden_words": lambda rng: {
        "forbidden_words": rng.sample(_FORBIDDEN, rng.choice((1, 2)))
    },
    "keywords:frequency": lambda rng: {
        "keyword": rng.choice(_KEYWORDS),
        "frequency": rng.choice((1, 2, 3)),
        "relation": rng.choice((AT_LEAST, LESS_THAN)),
    },
    "keywords:letter_frequency": lambda rng: {
        "letter": rng.choice("zqjw"),  # in no keyword or end phrase
        "let_frequency": rng.choice((1, 2, 3, 5)),
        "let_relation": rng.choice((AT_LEAST, LESS_THAN)),
    },
    "startend:end_checker": lambda rng: {"end_phrase": rng.choice(_END_PHRASES)},
    "startend:quotation": lambda rng: {},
    "detectable_format:title": lambda rng: {},
    "detectable_format:json_format": lambda rng: {},
    "detectable_format:number_bullet_lists": lambda rng: {"num_bullets": rng.choice((2, 3, 4))},
    "detectable_format:number_highlighted_sections": lambda rng: {
        "num_highlights": rng.choice((1, 2, 3))
    },
    "detectable_format:multiple_sections": lambda rng: {
        "section_spliter": rng.choice(("SECTION", "PART")),
        "num_sections": rng.choice((2, 3)),
    },
    "detectable_content:postscript": lambda rng: {
        "postscript_marker": rng.choice(("P.S.", "P.P.S"))
    },
    "detectable_content:number_placeholders": lambda rng: {
        "num_placeholders": rng.choice((1, 2, 3))
    },
}


# --- seed tasks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedTask:
    """A seed: its id ("mtbench-81", "selfinstruct-0") and its own user turns."""

    id: str
    turns: tuple[str, ...]

    @property
    def split(self) -> str:
        digest = hashlib.sha256(self.id.encode("utf-8")).digest()
        return "heldout" if int.from_bytes(digest[:8], "big") % HELDOUT_SHARE == 0 else "train"


def seed_tasks() -> list[SeedTask]:
    """MT-Bench's 80 two-turn questions, then Self-Instruct's 175 tasks (instruction + input)."""
    seeds = []
    for _, row in iter_rows(resource("seeds", "mt_bench_questions.jsonl")):
        seeds.append(SeedTask(f"mtbench-{row['question_id']}", tuple(row["turns"])))
    for _, row in iter_rows(resource("seeds", "self_instruct_seed_tasks.jsonl")):
        text = row["instruction"].strip()
        given = row["instances"][0]["input"].strip()
        number = row["id"].removeprefix("seed_task_")
        seeds.append(SeedTask(f"selfinstruct-{number}", (f"{text}\n\n{given}" if given else text,)))
    return seeds


# --- conversations ----------------------------------------------------------------------------


def _new_constraints(
    rng: random.Random, current: Sequence[Constraint], k: int, ids: Sequence[str]
) -> list[Constraint]:
    """k constraints that contradict neither `current` nor each other."""
    added: list[Constraint] = []
    for _ in range(200):  # the pool is large; a handful of draws almost always suffice
        if len(added) == k:
            return added
        iid = rng.choice(ids)
        candidate = from_ifeval(iid, SAMPLERS[iid](rng))
        if not any(conflict(candidate, c) for c in (*current, *added)):
            added.append(candidate)
    raise ValueError(f"could not draw {k} compatible constraints from {len(ids)} ids")


def build(
    n: int,
    turns: int = 3,
    k: int = 2,
    seed: int = 0,
    split: str = "train",
    constraint_slot: Slot = "user",
    system: str | None = None,
    ids: Sequence[str] | None = None,
) -> list[TrainingConversation]:
    """n conversations of `turns` turns, each turn adding k constraints; same seed, same output.

    Seed tasks of the split are used in a seeded random order; past the last one they are
    reused with fresh constraints (id suffix "-r1", "-r2", ...).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if constraint_slot not in SLOTS:
        raise ValueError(f"constraint_slot must be one of {SLOTS}, got {constraint_slot!r}")
    if n < 0 or turns < 1 or k < 1:
        raise ValueError(f"need n >= 0, turns >= 1, k >= 1 (got {n}, {turns}, {k})")
    ids = list(ids or SAMPLERS)
    unknown = [i for i in ids if i not in SAMPLERS]
    if unknown:
        raise ValueError(f"no kwarg sampler for {unknown}; known: {sorted(SAMPLERS)}")
    rng = random.Random(seed)
    pool = [s for s in seed_tasks() if s.split == split]
    rng.shuffle(pool)
    out = []
    for i in range(n):
        task = pool[i % len(pool)]
        repeat = i // len(pool)
        constraints: list[Constraint] = []
        conv_turns = []
        for t in range(turns):
            text = task.turns[t] if t < len(task.turns) else rng.choice(FOLLOW_UPS)
            constraints = constraints + _new_constraints(rng, constraints, k, ids)
            conv_turns.append(PlannedTurn(text, tuple(constraints)))
        out.append(
            TrainingConversation(
                id=task.id + (f"-r{repeat}" if repeat else ""),
                seed_id=task.id,
                split=split,
                turns=tuple(conv_turns),
                constraint_slot=constraint_slot,
                system=system,
                meta={"seed": seed, "k": k},
            )
        )
    return out


# --- CLI --------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say which conversations to build (shared with `samples`)."""
    p.add_argument("--n-conversations", type=int, default=100)
    p.add_argument("--turns", type=int, default=3)
    p.add_argument("--k", type=int, default=2, help="new constraints per turn")
    p.add_argument("--split", choices=SPLITS, default="train")
    p.add_argument("--slot", choices=SLOTS, default="user", help="where constraints go")
    p.add_argument("--system", default=None, help="a system message to start from")
    p.add_argument("--seed", type=int, default=0)


def from_args(args: argparse.Namespace) -> list[TrainingConversation]:
    """The conversations `add_arguments`' options ask for."""
    return build(
        args.n_conversations,
        turns=args.turns,
        k=args.k,
        seed=args.seed,
        split=args.split,
        constraint_slot=args.slot,
        system=args.system,
    )


def _run(args: argparse.Namespace) -> None:
    conversations = from_args(args)
    write_conversations(args.out, conversations)
    print(json.dumps({"conversations": len(conversations), "out": args.out}))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `conversations` (write training conversations as JSONL)."""
    p = subparsers.add_parser(
        "conversations", help="build multi-turn multi-constraint training conversations"
    )
    add_arguments(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_run)
    return p
