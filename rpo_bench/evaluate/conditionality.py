"""Does a model read its constraints? The conditionality index J (issue 29, §3).

Items: the first turn of each held-out conversation (later turns refer to earlier
replies, so only the first stands alone with an empty history), one item per reversible
verifiable constraint of that turn. An item is the turn's task shown twice, each time
with that ONE constraint, rendered as the evaluation renders it (`data.prompt.render`,
the conversation's slot and system message): once the original c, once its exact
reversal ¬c in the same slot. One constraint per prompt keeps each constraint id's index
clean. Free-text constraints (no exact reversal, no checker) and ids without a reversal
give no item; a file with none gives J = NaN over 0 items.

Decoding: greedy, one reply per prompt, `max_new_tokens` of the caller's settings.
Scoring: the strict checkers (`Constraint.check`), under which c and ¬c are exact
complements: every reply passes exactly one of them.

The index (Youden's J):

    J = P(reply passes c | shown c) + P(reply passes ¬c | shown ¬c) - 1
      = P(passes c | shown c) - P(passes c | shown ¬c)

the effect of the instruction on the reply. 0: the reply does not depend on it (a
replier that ignores the prompt scores exactly 0); 1: the model follows both directions
perfectly; below 0: it does the opposite of what it is told.

Per-item score (the report's per-prompt score, paired across models by item key):
pass(c) + pass(¬c) - 1, in {-1, 0, 1}; its mean over items is exactly J.

Interval: a seeded 95% percentile bootstrap (`N_BOOT` resamples by default, the ablation's
`eval.bootstrap`; seed `SEED`) resampling held-out turns with replacement, each with all
its items (a cluster bootstrap: a turn's items share one task), J recomputed over the
resampled items; per constraint id the same, over the turns holding that id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rpo_bench.constraints import Constraint
from rpo_bench.data.prompt import Message, render
from rpo_bench.rollout.settings import GenerationSettings

N_BOOT = 1000
SEED = 0
INTERVAL = "95% percentile bootstrap over held-out turns (cluster), seeded"


@dataclass(frozen=True)
class Item:
    """One (turn, constraint): the same task under c and under ¬c."""

    key: str  # "<conversation id>/t1/c<index of the constraint in the turn>"
    turn: str  # the held-out turn: the bootstrap's unit
    constraint: Constraint
    reversal: Constraint
    original: list[Message]  # the messages showing c
    reversed: list[Message]  # ... and showing ¬c, in the same slot


def items(conversations: Sequence[Any]) -> list[Item]:
    """The items of `TrainingConversation`s, in conversation then constraint order."""
    out = []
    for conv in conversations:
        first = conv.turns[0]
        for j, c in enumerate(first.constraints):
            if not isinstance(c, Constraint) or not c.reversible:
                continue
            rev = c.reverse()
            out.append(Item(
                f"{conv.id}/t1/c{j}", f"{conv.id}/t1", c, rev,
                render(first.task, [c], conv.constraint_slot, conv.system),
                render(first.task, [rev], conv.constraint_slot, conv.system),
            ))  # fmt: skip
    return out


def score_item(item: Item, reply_original: str, reply_reversed: str) -> dict[str, Any]:
    """An item's row: its prompts, replies, both verdicts and its score."""
    passed = item.constraint.check(reply_original)
    passed_rev = item.reversal.check(reply_reversed)
    return {
        "key": item.key,
        "turn": item.turn,
        "instruction_id": item.constraint.instruction_id,
        "constraint": item.constraint.to_dict(),
        "reversal": item.reversal.to_dict(),
        "prompt_original": item.original,
        "prompt_reversed": item.reversed,
        "reply_original": reply_original,
        "reply_reversed": reply_reversed,
        "pass_original": passed,
        "pass_reversed": passed_rev,
        "score": int(passed) + int(passed_rev) - 1,
    }


def play(conversations: Path, backend: Any, settings: GenerationSettings) -> list[dict[str, Any]]:
    """A row per item (`score_item`) of the held-out `conversations` file: both prompts
    decoded greedily by `backend` (`rollout.multiturn.Backend`), in one batch."""
    from rpo_bench.data.conversations import read_conversations

    found = items(read_conversations(conversations))
    greedy = GenerationSettings(max_new_tokens=settings.max_new_tokens, seed=settings.seed)
    chats = [chat for it in found for chat in (it.original, it.reversed)]
    replies = backend.generate(chats, greedy) if chats else []
    return [score_item(it, replies[2 * k][0], replies[2 * k + 1][0]) for k, it in enumerate(found)]


def _interval(
    scores: np.ndarray, turns: Sequence[str], n_boot: int, seed: int
) -> tuple[float, float]:
    """The 95% percentile interval of the mean score, resampling turns with their items."""
    if not len(scores):
        return math.nan, math.nan
    _, cluster = np.unique(np.asarray(turns), return_inverse=True)
    sums = np.bincount(cluster, weights=scores)
    counts = np.bincount(cluster).astype(float)
    idx = np.random.default_rng(seed).integers(0, len(sums), size=(n_boot, len(sums)))
    boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(lo), float(hi)


def _summary(rows: Sequence[Mapping[str, Any]], n_boot: int, seed: int) -> dict[str, Any]:
    scores = np.array([r["score"] for r in rows], dtype=float)
    lo, hi = _interval(scores, [r["turn"] for r in rows], n_boot, seed)

    def share(key: str) -> float:
        return float(np.mean([bool(r[key]) for r in rows])) if rows else math.nan

    return {
        "j": float(scores.mean()) if len(scores) else math.nan,
        "ci95": [lo, hi],
        "pass_original": share("pass_original"),
        "pass_reversed": share("pass_reversed"),
        "n": len(rows),
    }


def index(
    rows: Sequence[Mapping[str, Any]], n_boot: int = N_BOOT, seed: int = SEED
) -> dict[str, Any]:
    """The task's eval entry from its rows: `metrics` (`conditionality` = J,
    `pass_original`, `pass_reversed`: scalars whose mean over seeds means something, as the
    report's tables average every metric over seeds), `per_prompt` (each item's score), and
    beside them `ci95` (J's interval), `by_constraint` ({instruction id: {"j", "ci95",
    "pass_original", "pass_reversed", "n"}}), `n_items`, `n_turns` and `interval` (how the
    intervals were made)."""
    overall = _summary(rows, n_boot, seed)
    by_id: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_id.setdefault(r["instruction_id"], []).append(r)
    return {
        "metrics": {
            "conditionality": overall["j"],
            "pass_original": overall["pass_original"],
            "pass_reversed": overall["pass_reversed"],
        },
        "per_prompt": [float(r["score"]) for r in rows],
        "ci95": overall["ci95"],
        "by_constraint": {i: _summary(by_id[i], n_boot, seed) for i in sorted(by_id)},
        "n_items": len(rows),
        "n_turns": len({r["turn"] for r in rows}),
        "interval": f"{INTERVAL} ({n_boot} resamples, seed {seed})",
    }


def measure(
    conversations: Path, backend: Any, settings: GenerationSettings, n_boot: int = N_BOOT,
    seed: int = SEED,
) -> dict[str, Any]:  # fmt: skip
    """J of `backend` on a held-out conversations file, outside the ablation too: `index`'s
    entry plus `rows`, the per-item rows (`score_item`)."""
    rows = play(conversations, backend, settings)
    return {**index(rows, n_boot, seed), "rows": rows}
