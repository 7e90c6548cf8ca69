"""`rpo-bench pairs`: a samples file in, a pairs file and its statistics out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rpo_bench.files import write_atomic
from rpo_bench.jsonl import no_rows, refuse_empty, warn, write_jsonl
from rpo_bench.outputs import stats_path
from rpo_bench.pairs.examples import PREFERENCE, STRATEGIES, build, kind_of
from rpo_bench.pairs.pair import Reverser
from rpo_bench.pairs.stats import example_stats, pair_stats
from rpo_bench.pairs.turn import read_samples


def run(
    samples: str | Path,
    strategy: str,
    out: str | Path,
    *,
    min_margin: int = 1,
    max_pairs_per_turn: int | None = None,
    seed: int = 0,
    keep_unanimous: bool = True,
    reverser: Reverser | None = None,
    allow_empty: bool = True,
) -> dict[str, Any]:
    """Build a strategy's pairs (or SFT/KTO examples) from a samples file; write them and
    their statistics (atomically, and only once the whole input has been read and
    validated). Returns the statistics. `reverser` reverses free-text constraints (e.g. a
    `CheckedReverser`, whose counts then join the statistics as `reversals`).
    `allow_empty=False` (the command without `--allow-empty`) makes a samples file without
    rows an error naming it; by default it gives an empty example set, which the ablation
    runner reads as "nothing to train"."""
    options = {
        "min_margin": min_margin,
        "max_pairs_per_turn": max_pairs_per_turn,
        "seed": seed,
        "keep_unanimous": keep_unanimous,
    }
    kind = kind_of(strategy)
    read = read_samples(samples)
    refuse_empty(samples, read, "samples", "an empty pairs file", allow_empty=allow_empty)
    # a turn with a response the judge could not judge is left out: its verdicts would be
    # a guess, and a pair from it could teach the wrong preference
    turns = [t for t in read if not t.unjudged]
    examples = build(turns, strategy, **options, reverser=reverser)
    stats = {"samples": str(samples), "strategy": strategy, "options": options}
    if kind == PREFERENCE:
        stats |= pair_stats(turns, examples)
    else:
        stats |= example_stats(turns, examples, kind)
    if hasattr(reverser, "counts"):
        stats["reversals"] = reverser.counts()
    if len(turns) < len(read):  # only then, so the statistics of judged samples read as before
        stats["turns_unjudged"] = len(read) - len(turns)
        stats["responses_unjudged"] = sum(len(t.unjudged) for t in read)
    write_jsonl(out, (e.to_row() for e in examples))
    write_atomic(stats_path(out), json.dumps(stats, indent=2) + "\n")
    return stats


def _run(args: argparse.Namespace) -> None:
    stats = run(
        args.samples,
        args.strategy,
        args.out,
        min_margin=args.min_margin,
        max_pairs_per_turn=args.max_pairs_per_turn,
        seed=args.seed,
        keep_unanimous=not args.drop_unanimous,
        allow_empty=args.allow_empty,
    )
    print(json.dumps(stats, indent=2))
    if not stats["examples"]:
        warn(_none_built(stats, args.out))


def _none_built(stats: dict[str, Any], out: str | Path) -> str:
    """The warning for an example set without examples: why, as far as `run`'s statistics
    tell."""
    samples, turns = stats["samples"], stats["turns"]
    unjudged = stats.get("turns_unjudged", 0)
    noun = "pairs" if stats["kind"] == PREFERENCE else f"{stats['kind']} examples"
    if not turns and not unjudged:
        return f"{no_rows(samples, 'samples')}; wrote an empty {out} (--allow-empty)"
    if not turns:
        why = f"each turn ({unjudged} in all) has a response the judge could not judge"
    elif stats["kind"] == PREFERENCE and stats["distinct_responses"] == turns:
        why = f"in each turn ({turns} in all) all responses have the same verdicts (a tie)"
    else:
        options = ", ".join(f"{k}={v}" for k, v in stats["options"].items())
        why = f"strategy {stats['strategy']!r} found none in its {_turns(turns)} with {options}"
    if turns and unjudged:
        why += f" ({_turns(unjudged)} with an unjudged response left out)"
    return f"{samples}: 0 {noun} built, so {out} is empty: {why}"


def _turns(n: int) -> str:
    return f"{n} turn{'' if n == 1 else 's'}"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `pairs` on an argparse subparsers object (func=handler)."""
    p = subparsers.add_parser(
        "pairs",
        help="build preference pairs (or SFT/KTO examples) from judged samples",
        description="Build preference pairs (or SFT/KTO examples) from a samples file with one "
        "strategy; writes "
        "the pairs (JSONL) and <out>.stats.json next to them, and prints the statistics.",
    )
    p.add_argument("--samples", required=True, help="samples JSONL (one row per turn)")
    p.add_argument("--strategy", required=True, choices=sorted(STRATEGIES))
    p.add_argument("--out", required=True, help="pairs JSONL to write")
    p.add_argument("--min-margin", type=int, default=1, help="drop pairs with a smaller margin")
    p.add_argument("--max-pairs-per-turn", type=int, default=None, help="keep the largest margins")
    p.add_argument("--seed", type=int, default=0, help="breaks margin ties when capping")
    p.add_argument(
        "--drop-unanimous",
        action="store_true",
        help="leave out constraints on which all of a turn's responses agree",
    )
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="an empty samples file writes an empty pairs file (with a warning), not an error",
    )
    p.set_defaults(func=_run)
    return p
