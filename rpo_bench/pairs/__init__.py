"""Preference pairs from judged samples: the strategies (RPO and its ablations), the
samples and pairs file contracts, and the statistics written with every pair set."""

from rpo_bench.pairs.command import add_parser, run, stats_path
from rpo_bench.pairs.pair import PAIR_FIELDS, Pair, Reverser, build_pairs, load_pairs
from rpo_bench.pairs.stats import pair_stats, true_failures
from rpo_bench.pairs.strategy import STRATEGIES, Plan
from rpo_bench.pairs.turn import TextConstraint, Turn, parse_turn, read_samples, turn_from_row

__all__ = [
    "PAIR_FIELDS",
    "STRATEGIES",
    "Pair",
    "Plan",
    "Reverser",
    "TextConstraint",
    "Turn",
    "add_parser",
    "build_pairs",
    "load_pairs",
    "pair_stats",
    "parse_turn",
    "read_samples",
    "run",
    "stats_path",
    "true_failures",
    "turn_from_row",
]
