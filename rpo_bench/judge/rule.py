"""The exact rule judge: each verifiable constraint's own strict checker."""

from __future__ import annotations

from collections.abc import Sequence

from rpo_bench.constraints import Constraint
from rpo_bench.judge.verdicts import ConstraintJudge, VerdictRequest


class RuleJudge(ConstraintJudge):
    """`Constraint.check` (IFEval's strict rule) per constraint; free text is refused."""

    name = "rule"

    def judge_many(self, requests: Sequence[VerdictRequest]) -> list[list[bool]]:
        out = []
        for request in requests:
            for c in request.constraints:
                if not isinstance(c, Constraint):
                    raise ValueError(
                        f"the rule judge checks verifiable constraints only, got {c!r}; "
                        "judge free-text rules with LLMConstraintJudge"
                    )
            out.append([c.check(request.response) for c in request.constraints])
        return out
