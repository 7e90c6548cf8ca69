"""A judge that replays stored verdicts (judge_labels schema): re-scoring without calls."""

from __future__ import annotations

from pathlib import Path

from rpo_bench.jsonl import read_jsonl
from rpo_bench.judge.base import Judge
from rpo_bench.judge.types import Judgement, JudgeRequest, failed


class ReplayJudge(Judge):
    """Answers each turn with the verdicts a labels file holds for (system_id, round_index).

    With `check_answer` (default) a request whose answer differs from the labelled one
    is a judge error: the stored verdicts judged a different answer. Undecided labels
    (null verdicts) are replayed as None.
    """

    kind = "replay"

    def __init__(self, labels: str | Path, check_answer: bool = True) -> None:
        super().__init__(cache=None)  # reading the file is already free
        self.labels = Path(labels)
        self.check_answer = check_answer
        rows = read_jsonl(self.labels)
        self._rows = {(int(r["system_id"]), int(r["round_index"])): r for r in rows}
        judges = {r.get("judge") for r in rows}
        self._name = judges.pop() if len(judges) == 1 else f"replay:{self.labels.name}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def identity(self) -> str:
        return f"replay|{self._name}|{self.labels}"

    def _judge_uncached(self, request: JudgeRequest) -> Judgement:
        if request.key is None:
            return failed(
                "replay needs the request's (system_id, round_index) key", 0, [], "no_label"
            )
        row = self._rows.get(request.key)
        if row is None:
            return failed(
                f"no label for (system_id, round_index) = {request.key}", 0, [], "no_label"
            )
        if self.check_answer and row["answer"] != request.answer:
            return failed(
                f"answer for {request.key} differs from the labelled answer", 0, [], "no_label"
            )
        verdicts = row["verdicts"]
        if set(verdicts) != set(request.ids):
            return failed(
                f"labelled ids {sorted(verdicts)} != checklist ids {request.ids} for {request.key}",
                0,
                [],
            )
        return Judgement(
            verdicts={cid: verdicts[cid] for cid in request.ids},
            reasoning=row.get("reasoning", ""),
            raw={cid: row.get("verdicts_raw", {}).get(cid, "") for cid in request.ids},
            attempts=1,
        )
