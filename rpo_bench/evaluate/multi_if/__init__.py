"""Multi-IF (He et al. 2024): conversations, per-turn scoring, the lm-eval task.

A conversation has up to three user turns. Turn k's instruction list repeats every
earlier instruction (the lists are cumulative in the data), and turn k's reply is
checked against that list alone. A skipped turn (empty or "None" prompt cell, as the
56 rows without a turn 3 have) is left out of every count.

- `data`: conversations read and validated (errors name file, row and field).
- `metrics`: per-turn metrics by language, pooled and averaged, bootstrap intervals.
- `task`: the `multi_if` lm-eval tasks. `command`: `rpo-bench multi-if-score`.
"""

from rpo_bench.evaluate.multi_if.command import add_parser
from rpo_bench.evaluate.multi_if.data import (
    ALL,
    AVERAGE,
    COLUMNS,
    METRICS,
    TURNS,
    Conversation,
    MultiIfTurn,
    load_conversations,
    parse_row,
    read_rows,
)
from rpo_bench.evaluate.multi_if.metrics import score_file, score_rows

__all__ = [
    "ALL",
    "AVERAGE",
    "COLUMNS",
    "METRICS",
    "TURNS",
    "Conversation",
    "MultiIfTurn",
    "add_parser",
    "load_conversations",
    "parse_row",
    "read_rows",
    "score_file",
    "score_rows",
]
