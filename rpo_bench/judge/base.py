"""The judge interface: a request per turn, a judgement per request, and output rows.

A judge sees one SysBench turn (system message, earlier rounds with the model's
own answers, the current user message and answer, the checklist) and returns a
verdict per criterion. A turn the judge could not judge keeps `error` set and is
reported as a judge error, never as a pass or a fail.
"""

from __future__ import annotations

import abc
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rpo_bench.jsonl import read_jsonl  # noqa: F401  (re-exported for replay and calibrate)
from rpo_bench.judge.cache import JudgeCache
from rpo_bench.judge.prompt import ParseError, judge_messages, parse_judgement, prompt_key

log = logging.getLogger("rpo_bench.judge")

Criterion = dict[str, Any]  # {"criteria_id": int, "criteria_content": str, "criteria_type": str}

MAX_ATTEMPTS = 10  # as in the reference judge
GREEDY_ATTEMPTS = 5  # the first five at temperature 0, the rest at 0.5
RETRY_TEMPERATURE = 0.5


@dataclass
class JudgeRequest:
    """One turn to judge. `history` holds (user, answer) pairs with the model's OWN answers."""

    system: str
    history: Sequence[tuple[str, str]]
    user: str
    answer: str
    checklist: Sequence[Criterion]
    key: tuple[int, int] | None = None  # (system_id, round_index): replay needs it

    @property
    def ids(self) -> list[str]:
        """The checklist's criterion ids as strings, the keys a verdict map must have."""
        return [str(c["criteria_id"]) for c in self.checklist]


@dataclass
class Judgement:
    """The judge's answer for one turn.

    `verdicts` maps str(criteria_id) to True (是) / False (否); a replayed label the
    original judge left undecided (不适用 ...) is None. `raw` keeps the judge's original
    verdict strings. `error` is set (and `verdicts` empty) when every attempt failed.
    """

    verdicts: dict[str, bool | None]
    reasoning: str = ""
    raw: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    outputs: list[str] = field(default_factory=list)  # raw completions of failed attempts
    cached: bool = False

    @property
    def all_pass(self) -> bool | None:
        """No criterion judged 否 (the reference rule: undecided does not fail); None on error."""
        if self.error is not None:
            return None
        return not any(v is False for v in self.verdicts.values())


def temperature_for(attempt: int) -> float:
    """The reference schedule: attempts 0-4 greedy, later ones at 0.5 for a different answer."""
    return 0.0 if attempt < GREEDY_ATTEMPTS else RETRY_TEMPERATURE


def try_parse(text: str, request: JudgeRequest, attempt: int) -> tuple[Judgement | None, str]:
    """(judgement, "") when the completion parses for the request's checklist, else (None, why)."""
    try:
        verdicts, raw, reasoning = parse_judgement(text, request.ids)
    except ParseError as err:
        return None, f"unparseable judgement: {err}"
    return Judgement(dict(verdicts), reasoning, raw, attempts=attempt + 1), ""


def failed(message: str, attempts: int, outputs: list[str]) -> Judgement:
    """The judgement of a turn the judge could not judge."""
    return Judgement(verdicts={}, error=message, attempts=attempts, outputs=outputs)


class JudgeUnavailable(ConnectionError):
    """The judge cannot work at all (bad key, unknown model, wrong URL): stop, do not retry."""


class Judge(abc.ABC):
    """Base class. Subclasses implement `_judge_uncached` (or `_judge_batch` for batching).

    `judge_many` answers what it can from the cache and sends the rest to the judge.
    """

    kind = "base"
    concurrency = 1

    def __init__(self, cache: JudgeCache | str | Path | None = None) -> None:
        self.cache = JudgeCache(cache) if isinstance(cache, str | Path) else cache

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """What goes in an output row's `judge` field (a model name)."""

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """kind|model|endpoint: what a cached judgement belongs to. Never holds a secret."""

    @abc.abstractmethod
    def _judge_uncached(self, request: JudgeRequest) -> Judgement:
        """One turn, every attempt included; the cache is the caller's business."""

    def _judge_batch(self, requests: list[JudgeRequest]) -> list[Judgement]:
        if self.concurrency <= 1 or len(requests) <= 1:
            return [self._judge_uncached(r) for r in requests]
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            return list(pool.map(self._judge_uncached, requests))
        finally:
            # If one turn raised (e.g. JudgeUnavailable), the queued ones are not started.
            pool.shutdown(wait=True, cancel_futures=True)

    def judge(self, request: JudgeRequest) -> Judgement:
        """Judge one turn."""
        return self.judge_many([request])[0]

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        """Judge turns, in order; cached ones cost no call; failures are never cached."""
        results: list[Judgement | None] = [None] * len(requests)
        todo: list[int] = []
        keys: list[str] = []
        for i, request in enumerate(requests):
            key = prompt_key(judge_messages(request))
            keys.append(key)
            hit = self.cache.get(self.identity, key) if self.cache is not None else None
            if hit is not None:
                results[i] = replace(hit, cached=True)
            else:
                todo.append(i)
        if todo:
            fresh = self._judge_batch([requests[i] for i in todo])
            for i, judgement in zip(todo, fresh, strict=True):
                results[i] = judgement
                if self.cache is not None and judgement.error is None:
                    self.cache.put(self.identity, keys[i], judgement)
        return [r for r in results if r is not None]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity!r})"


# --- sessions -> requests -> rows -------------------------------------------------------------


def session_turns(session: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A session's turns in round order: {round_index, user, criteria}.

    Uses the local `turns` field, or rebuilds it from the official schema's
    `messages` + `prompt_infos` (keyed by user text).
    """
    if "turns" in session:
        return sorted(session["turns"], key=lambda t: t["round_index"])
    users = [m["content"] for m in session["messages"] if m["role"] == "user"]
    turns = []
    for k, text in enumerate(users, start=1):
        criteria = session["prompt_infos"][text]["criteria"]
        criteria = sorted(criteria.values(), key=lambda c: int(c["criteria_id"]))
        turns.append({"round_index": k, "user": text, "criteria": criteria})
    return turns


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
    """Write rows as UTF-8 JSONL (Chinese kept readable)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
