"""SysBench (system-message following): data, judging, metrics, the lm-eval task.

- `data`: sessions and judge labels, read and validated; the session file located.
- `judging`: sessions -> judge requests (the model's own history) -> judge_labels rows;
  `judge_prompts(session, replies)`: each turn's judge prompt (SysBench's own by default).
- `metrics`: CSR, ISR, SSR with the paper's splits.
- `calibrate`: a judge's agreement with the released GPT-4o verdicts.
- `task`: the `sysbench_multiturn` lm-eval task. `command`: `rpo-bench sysbench-score`.
"""

from rpo_bench.evaluate.sysbench.command import add_parser, main
from rpo_bench.evaluate.sysbench.data import (
    ALIGNMENTS,
    N_ROUNDS,
    PUBLISHED,
    TYPE_ALIASES,
    Criterion,
    Label,
    Session,
    SysbenchRound,
    check_coverage,
    label_from_row,
    load_labels,
    load_sessions,
    session_from_row,
)
from rpo_bench.evaluate.sysbench.judging import judge_prompts
from rpo_bench.evaluate.sysbench.metrics import score

__all__ = [
    "ALIGNMENTS",
    "N_ROUNDS",
    "PUBLISHED",
    "TYPE_ALIASES",
    "Criterion",
    "Label",
    "Session",
    "SysbenchRound",
    "add_parser",
    "check_coverage",
    "judge_prompts",
    "label_from_row",
    "load_labels",
    "load_sessions",
    "main",
    "score",
    "session_from_row",
]
