"""Verifiable constraints: IFEval's 25 instruction ids with describe, check and exact reversal."""

from rpo_bench.constraints.constraint import (
    INSTRUCTION_IDS,
    Constraint,
    from_dict,
    from_ifeval,
)
from rpo_bench.constraints.specs import NON_REVERSIBLE

__all__ = ["INSTRUCTION_IDS", "NON_REVERSIBLE", "Constraint", "from_dict", "from_ifeval"]
