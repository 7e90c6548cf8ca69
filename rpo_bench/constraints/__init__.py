"""Verifiable constraints: IFEval's 25 instruction ids with describe, check and exact reversal;
and free-text constraints, judged and reversed by LLMs."""

from rpo_bench.constraints.constraint import (
    INSTRUCTION_IDS,
    Constraint,
    from_dict,
    from_ifeval,
)
from rpo_bench.constraints.specs import NON_REVERSIBLE
from rpo_bench.constraints.text import (
    AnyConstraint,
    Criterion,
    Describable,
    TextConstraint,
    any_from_dict,
)

__all__ = [
    "Criterion",
    "Describable",
    "INSTRUCTION_IDS",
    "NON_REVERSIBLE",
    "AnyConstraint",
    "Constraint",
    "TextConstraint",
    "any_from_dict",
    "from_dict",
    "from_ifeval",
]
