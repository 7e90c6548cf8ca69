"""Preference pairs from judged samples: the strategies (RPO and its ablations), the SFT and
KTO baselines' single-response examples, the samples and pairs file contracts, and the
statistics written with every example set."""

from rpo_bench.pairs.command import add_parser, run, stats_path
from rpo_bench.pairs.examples import KINDS, LOSSES, build, kind_of, load_pairs
from rpo_bench.pairs.pair import PAIR_FIELDS, Pair, Reverser, build_pairs
from rpo_bench.pairs.stats import example_stats, pair_stats, true_failures
from rpo_bench.pairs.strategy import STRATEGIES, Plan
from rpo_bench.pairs.turn import TextConstraint, Turn, parse_turn, read_samples, turn_from_row
from rpo_bench.pairs.unpaired import Example, build_examples

__all__ = [
    "KINDS",
    "LOSSES",
    "PAIR_FIELDS",
    "STRATEGIES",
    "Example",
    "Pair",
    "Plan",
    "Reverser",
    "TextConstraint",
    "Turn",
    "add_parser",
    "build",
    "build_examples",
    "build_pairs",
    "example_stats",
    "kind_of",
    "load_pairs",
    "pair_stats",
    "parse_turn",
    "read_samples",
    "run",
    "stats_path",
    "true_failures",
    "turn_from_row",
]
