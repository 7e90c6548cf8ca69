"""SysBench sessions as judge requests, and judgements as judge_labels rows.

Each turn is judged with the model's OWN earlier answers as its history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rpo_bench.evaluate.sysbench.data import turns_of
from rpo_bench.jsonl import write_jsonl
from rpo_bench.judge.base import Judge
from rpo_bench.judge.types import Judgement, JudgeRequest

log = logging.getLogger("rpo_bench.judge")


def session_turns(session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A session's turns in round order: {round_index, user, criteria, ...} (`data.turns_of`)."""
    turns = turns_of(dict(session), f"session {session.get('system_id')}")
    return sorted(turns, key=lambda t: t["round_index"])


def session_requests(
    session: Mapping[str, Any], answers: Mapping[tuple[int, int], str]
) -> list[JudgeRequest]:
    """One request per answered turn of a session, its history built from earlier answers."""
    sid = int(session["system_id"])
    history: list[tuple[str, str]] = []
    requests = []
    missing: list[int] = []
    for turn in session_turns(session):
        rnd = int(turn["round_index"])
        answer = answers.get((sid, rnd))
        if answer is None:
            missing.append(rnd)
        else:
            if missing:
                # The judge must see the model's own earlier answers; without them the
                # history would be wrong, so refuse rather than judge a different dialogue.
                raise ValueError(
                    f"session {sid}: round {rnd} has an answer but earlier round(s) {missing} "
                    "do not; the judge needs every earlier answer as history"
                )
            requests.append(
                JudgeRequest(
                    system=session["system_prompt"],
                    history=list(history),
                    user=turn["user"],
                    answer=answer,
                    checklist=turn["criteria"],
                    key=(sid, rnd),
                )
            )
        history.append((turn["user"], answer or ""))
    return requests


def judgement_row(
    judgement: Judgement, request: JudgeRequest, model_name: str, judge_name: str
) -> dict[str, Any]:
    """An output row in the judge_labels schema, plus `judge_error` and `error`."""
    sid, rnd = request.key if request.key else (None, None)
    return {
        "model": model_name,
        "system_id": sid,
        "round_index": rnd,
        "answer": request.answer,
        "judge": judge_name,
        "reasoning": judgement.reasoning,
        "verdicts": dict(judgement.verdicts) if judgement.error is None else {},
        "verdicts_raw": dict(judgement.raw) if judgement.error is None else {},
        "all_pass": judgement.all_pass,
        "judge_error": judgement.error is not None,
        "error": judgement.error,
    }


def judge_sessions(
    judge: Judge,
    sessions: Iterable[Mapping[str, Any]],
    answers: Mapping[tuple[int, int], str],
    model_name: str,
) -> list[dict[str, Any]]:
    """Judge every answered turn of the sessions; rows in session then round order.

    `answers` maps (system_id, round_index) to the model's answer; each turn's history
    holds the model's own earlier answers.
    """
    requests = [r for s in sessions for r in session_requests(s, answers)]
    judgements = judge.judge_many(requests)
    rows = [
        judgement_row(j, r, model_name, judge.name)
        for j, r in zip(judgements, requests, strict=True)
    ]
    errors = sum(r["judge_error"] for r in rows)
    if errors:
        log.warning("%d of %d turns could not be judged (judge errors)", errors, len(rows))
    return rows


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    """Write rows as UTF-8 JSONL (Chinese kept readable), atomically."""
    write_jsonl(path, (dict(r) for r in rows))
