"""A teacher's replies as the conversation history (the authors' "golden" history).

In the authors' pipeline the history of each turn is a stronger model's best of n samples,
judged on the turn's constraints, refined by self-critique until it satisfies at least a
threshold share of them (0.7); if it never does, the conversation ends at that turn. The
teacher answers the same prompt the policy answers (in rpo_bench the turn's constraints
are already in it: in the user message, or in the system message with
`constraint_slot: system`, where the history's user messages hold no constraints, as the
authors strip them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rpo_bench.judge.verdicts import ConstraintJudge, ConstraintLike, VerdictRequest, text_of
from rpo_bench.rollout.multiturn import Backend, Message
from rpo_bench.rollout.settings import GenerationSettings

CRITIQUE = (
    "Your reply breaks these rules:\n{failed}\n"
    "Rewrite your reply so that it follows every rule. Answer with the new reply only."
)


def share_of(verdicts: Sequence[bool] | None) -> float | None:
    """The share of its constraints a reply satisfies (1.0 with none); None if unjudged."""
    if verdicts is None:
        return None
    return sum(verdicts) / len(verdicts) if verdicts else 1.0


@dataclass
class Teacher:
    """The teacher model, its sampling settings (`settings.n` = best of n), the share of
    constraints its reply must satisfy, and the self-critique rounds allowed to get there."""

    backend: Backend
    settings: GenerationSettings
    threshold: float = 0.7
    critique_rounds: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1 or self.critique_rounds < 0 or self.settings.n < 1:
            raise ValueError("teacher: threshold in (0, 1], critique_rounds >= 0, n >= 1")

    def golden(
        self,
        chats: Sequence[list[Message]],
        constraints: Sequence[Sequence[ConstraintLike]],
        judge: ConstraintJudge,
        ids: Sequence[str],
        turn: int,
    ) -> list[tuple[str | None, dict[str, Any]]]:
        """Per chat: (the history reply, or None to end the conversation; what happened:
        samples, share, rounds, passed, and the best reply whether or not it passed)."""
        settings = dataclasses.replace(self.settings, seed=self.settings.seed + turn)
        samples = self.backend.generate(chats, settings)
        best = [
            self._best(c, s, k, judge, i)
            for c, s, k, i in zip(chats, samples, constraints, ids, strict=True)
        ]
        info = [
            {"samples": len(s), "share": share, "rounds": 0}
            for s, (_, share, _) in zip(samples, best, strict=True)
        ]
        for round_ in range(1, self.critique_rounds + 1):
            # an unjudged reply (share None) has no failed rules to name: no critique
            todo = [n for n, (_, share, _) in enumerate(best)
                    if share is not None and share < self.threshold]  # fmt: skip
            if not todo:
                break
            asks = [self._critique(chats[n], *best[n][::2], constraints[n]) for n in todo]
            once = dataclasses.replace(settings, n=1, seed=settings.seed + 1000 * round_)
            for n, (reply,) in zip(todo, self.backend.generate(asks, once), strict=True):
                candidate = self._best(chats[n], [reply], constraints[n], judge, ids[n])
                info[n]["rounds"] = round_
                if candidate[1] is not None and candidate[1] >= best[n][1]:  # no worse
                    best[n] = candidate
                    info[n]["share"] = candidate[1]
        out = []
        for (reply, share, _), record in zip(best, info, strict=True):
            passed = share is not None and share >= self.threshold
            # "best": the refined reply whether or not it passed (the critic pool's candidate)
            out.append((reply if passed else None, record | {"passed": passed, "best": reply}))
        return out

    @staticmethod
    def _best(
        chat: list[Message],
        samples: Sequence[str],
        constraints: Sequence[ConstraintLike],
        judge: ConstraintJudge,
        sample_id: str,
    ) -> tuple[str, float | None, list[bool] | None]:
        """(the sample satisfying the largest share, that share, its verdicts); first on ties.
        Unjudged samples (verdicts None) come last; if all are, share and verdicts are None."""
        requests = [
            VerdictRequest(chat, s, constraints, f"{sample_id}/teacher", r)
            for r, s in enumerate(samples)
        ]
        verdicts = judge.judge_many(requests)
        shares = [share_of(v) for v in verdicts]
        ranked = [-1.0 if share is None else share for share in shares]
        k = ranked.index(max(ranked))
        return samples[k], shares[k], verdicts[k]

    @staticmethod
    def _critique(
        chat: list[Message], reply: str, verdicts: list[bool], constraints: Sequence[ConstraintLike]
    ) -> list[Message]:
        failed = "\n".join(
            f"- {text_of(c)}" for c, ok in zip(constraints, verdicts, strict=True) if not ok
        )
        return [
            *chat,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": CRITIQUE.format(failed=failed)},
        ]
