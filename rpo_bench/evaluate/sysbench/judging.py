"""SysBench sessions as judge requests, and judgements as judge_labels rows.

Each turn is judged with the model's OWN earlier answers as its history.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rpo_bench.evaluate.sysbench.data import turns_of
from rpo_bench.jsonl import write_jsonl
from rpo_bench.judge.base import Judge
from rpo_bench.judge.prompt import judge_prompt
from rpo_bench.judge.types import Judgement, JudgeRequest

log = logging.getLogger("rpo_bench.judge")


def session_turns(session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A session's turns in round order: {round_index, user, criteria, ...} (`data.turns_of`)."""
    turns = turns_of(dict(session), f"session {session.get('system_id')}")
    return sorted(turns, key=lambda t: t["round_index"])


HISTORIES = ("own", "reference")  # whose replies earlier turns show: the model's, or the data's


def reference_replies(session: Mapping[str, Any]) -> list[str]:
    """The session's ground-truth replies in round order; a clear error where it has none."""
    sid = session.get("system_id")
    turns = session_turns(session)
    missing = [t["round_index"] for t in turns if not isinstance(t.get("reference"), str)]
    if missing:
        raise ValueError(
            f"session {sid}: history 'reference' needs the data's reference replies, and "
            f"round(s) {missing} have none (the local sysbench_eval.jsonl has none; SysBench's "
            "own JSON at the pinned commit holds them)"
        )
    return [t["reference"] for t in turns]


def session_requests(
    session: Mapping[str, Any], answers: Mapping[tuple[int, int], str], history: str = "own"
) -> list[JudgeRequest]:
    """One request per answered turn of a session. Its history holds the earlier turns with
    the model's own answers (`own`, the default) or the data's reference replies
    (`reference`, SysBench's ground-truth-history variant)."""
    if history not in HISTORIES:
        raise ValueError(f"history must be one of {HISTORIES}, got {history!r}")
    sid = int(session["system_id"])
    references = reference_replies(session) if history == "reference" else None
    earlier: list[tuple[str, str]] = []
    requests = []
    missing: list[int] = []
    for k, turn in enumerate(session_turns(session)):
        rnd = int(turn["round_index"])
        answer = answers.get((sid, rnd))
        if answer is None:
            missing.append(rnd)
        else:
            if missing and references is None:
                # The judge must see the model's own earlier answers; without them the
                # history would be wrong, so refuse rather than judge a different dialogue.
                raise ValueError(
                    f"session {sid}: round {rnd} has an answer but earlier round(s) {missing} "
                    "do not; the judge needs every earlier answer as history"
                )
            requests.append(
                JudgeRequest(
                    system=session["system_prompt"],
                    history=list(earlier),
                    user=turn["user"],
                    answer=answer,
                    checklist=turn["criteria"],
                    key=(sid, rnd),
                )
            )
        earlier.append((turn["user"], references[k] if references else answer or ""))
    return requests


def judge_prompts(
    session: Mapping[str, Any],
    replies: Sequence[str],
    prompt: str = "official",
    history: str = "own",
) -> list[str]:
    """The judge prompt of each turn of one `sysbench_eval.jsonl` row, given the model's
    replies in round order; with `official`, exactly SysBench's `get_eval_pattern` text."""
    sid = int(session["system_id"])
    answers = {(sid, k): reply for k, reply in enumerate(replies, 1)}
    requests = session_requests(session, answers, history)
    return [judge_prompt(prompt).render(r) for r in requests]


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
        "judge_failure": judgement.failure,
    }


def judge_sessions(
    judge: Judge,
    sessions: Iterable[Mapping[str, Any]],
    answers: Mapping[tuple[int, int], str],
    model_name: str,
    history: str = "own",
) -> list[dict[str, Any]]:
    """Judge every answered turn of the sessions; rows in session then round order.

    `answers` maps (system_id, round_index) to the model's answer; each turn's history
    holds the model's own earlier answers, or with `history="reference"` the data's.
    """
    requests = [r for s in sessions for r in session_requests(s, answers, history)]
    judgements = judge.judge_many(requests)
    rows = [
        judgement_row(j, r, model_name, judge.name)
        for j, r in zip(judgements, requests, strict=True)
    ]
    errors = sum(r["judge_error"] for r in rows)
    if errors:
        kinds = Counter(r["judge_failure"] for r in rows if r["judge_error"])
        log.warning(
            "%d of %d turns could not be judged (judge errors: %s)",
            errors,
            len(rows),
            ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())),
        )
    return rows


def write_rows(rows: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    """Write rows as UTF-8 JSONL (Chinese kept readable), atomically."""
    write_jsonl(path, (dict(r) for r in rows))
