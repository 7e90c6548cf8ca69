"""The judge interface: `Judge` answers SysBench turns, from its cache where it can.

A judge sees one SysBench turn (system message, earlier rounds with the model's
own answers, the current user message and answer, the checklist) and returns a
verdict per criterion. A turn the judge could not judge keeps `error` set and is
reported as a judge error, never as a pass or a fail.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from rpo_bench import faults
from rpo_bench.judge.attempts import MAX_ATTEMPTS, try_parse
from rpo_bench.judge.cache import JudgeCache
from rpo_bench.judge.prompt import DEFAULT_PROMPT, JudgePrompt, judge_prompt
from rpo_bench.judge.types import Judgement, JudgeRequest, failed
from rpo_bench.textcache import prompt_key


class Judge(abc.ABC):
    """Base class. Subclasses implement `_judge_uncached` (or `_judge_batch` for batching).

    `judge_many` answers what it can from the cache and sends the rest to the judge; each
    judged turn is stored as it comes (`_store`), so a killed run keeps every turn judged
    before the kill.
    """

    kind = "base"
    concurrency = 1
    max_attempts = MAX_ATTEMPTS

    def __init__(
        self,
        cache: JudgeCache | str | Path | None = None,
        prompt: str | JudgePrompt = DEFAULT_PROMPT,
        rejudge_errors: bool = False,
    ) -> None:
        self.cache = JudgeCache(cache) if isinstance(cache, str | Path) else cache
        self.prompt = judge_prompt(prompt)
        self.rejudge_errors = rejudge_errors
        self._stored = itertools.count(1)  # turns judged and stored (fault point judged-<n>)

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
        """Judge and store each turn as it comes. A subclass that batches stores its own."""

        def one(request: JudgeRequest) -> Judgement:
            return self._store(request, self._judge_uncached(request))

        if self.concurrency <= 1 or len(requests) <= 1:
            return [one(r) for r in requests]
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            return list(pool.map(one, requests))
        finally:
            # If one turn raised (e.g. JudgeUnavailable), the queued ones are not started.
            pool.shutdown(wait=True, cancel_futures=True)

    def check(self) -> None:
        """Pre-flight before any generation: raise JudgeUnavailable if this judge cannot
        work. A judge on this machine has nothing to check."""
        return None

    def judge(self, request: JudgeRequest) -> Judgement:
        """Judge one turn."""
        return self.judge_many([request])[0]

    def judge_many(self, requests: Sequence[JudgeRequest]) -> list[Judgement]:
        """Judge turns, in order. From the cache first: a parsed judgement, else the stored raw
        answers read with the current parser. A turn whose stored answers used up every
        attempt without parsing stays unjudged without a call, unless `rejudge_errors`.
        Failures are never cached as judgements; every raw answer is kept."""
        results: list[Judgement | None] = [None] * len(requests)
        todo: list[int] = []
        for i, request in enumerate(requests):
            results[i] = self._from_cache(request, self._key(request))
            if results[i] is None:
                todo.append(i)
        if todo:
            fresh = self._judge_batch([requests[i] for i in todo])
            for i, judgement in zip(todo, fresh, strict=True):
                results[i] = judgement
        return [r for r in results if r is not None]

    def _key(self, request: JudgeRequest) -> str:
        return prompt_key(self.prompt.messages(request))

    def _store(self, request: JudgeRequest, judgement: Judgement) -> Judgement:
        """Keep a fresh judgement's raw answers (failed tries included) and, if it parsed,
        the judgement: one atomic write per turn, as soon as the turn is judged."""
        if self.cache is not None:
            key = self._key(request)
            answers = [*judgement.outputs, *([judgement.answer] if judgement.answer else [])]
            self.cache.add_answers(self.identity, key, answers)
            if judgement.error is None:
                self.cache.put(self.identity, key, judgement)
        faults.reach(f"judged-{next(self._stored)}")
        return judgement

    def _from_cache(self, request: JudgeRequest, key: str) -> Judgement | None:
        if self.cache is None:
            return None
        hit = self.cache.get(self.identity, key)
        if hit is not None:
            return replace(hit, cached=True)
        answers = self.cache.get_answers(self.identity, key)
        for n, text in enumerate(answers):
            judgement, _ = try_parse(self.prompt, text, request, n)
            if judgement is not None:  # an old answer the current parser reads: no call
                self.cache.put(self.identity, key, judgement)
                return replace(judgement, cached=True)
        if len(answers) >= self.max_attempts and not self.rejudge_errors:
            message = (
                f"unjudged: the {len(answers)} stored answers do not parse; "
                "judge again with rejudge_errors (--rejudge-errors)"
            )
            return replace(failed(message, 0, answers), cached=True)
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity!r})"
