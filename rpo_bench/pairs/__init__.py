"""Preference pairs from judged samples: the strategies (RPO and its ablations), the SFT and
KTO baselines' single-response examples, the samples and pairs file contracts, and the
statistics written with every example set."""

from rpo_bench.pairs.command import add_parser, run, stats_path
from rpo_bench.pairs.examples import (
    PAIR_STRATEGIES,
    STRATEGIES,
    StrategySpec,
    build,
    build_pairs,
    kind_of,
    load_pairs,
    strategy,
)
from rpo_bench.pairs.pair import PAIR_FIELDS, Pair, Reverser
from rpo_bench.pairs.stats import example_stats, pair_stats, true_failures
from rpo_bench.pairs.strategy import Plan
from rpo_bench.pairs.turn import JudgedTurn, TextConstraint, parse_turn, read_samples, turn_from_row
from rpo_bench.pairs.unpaired import Example

__all__ = [
    "PAIR_FIELDS",
    "PAIR_STRATEGIES",
    "STRATEGIES",
    "Example",
    "Pair",
    "Plan",
    "Reverser",
    "StrategySpec",
    "TextConstraint",
    "JudgedTurn",
    "add_parser",
    "build",
    "build_pairs",
    "example_stats",
    "kind_of",
    "load_pairs",
    "pair_stats",
    "parse_turn",
    "read_samples",
    "run",
    "stats_path",
    "strategy",
    "true_failures",
    "turn_from_row",
]
