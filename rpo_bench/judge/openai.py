"""A judge behind any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, vLLM, ...).

The HTTP call, error classification, backoff and key scrubbing are `rpo_bench.openai_client`;
this module adds the judge's attempt schedule and parsing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rpo_bench.judge.attempts import MAX_ATTEMPTS, log, temperature_for, try_parse
from rpo_bench.judge.base import Judge
from rpo_bench.judge.cache import JudgeCache
from rpo_bench.judge.prompt import DEFAULT_PROMPT, JudgePrompt
from rpo_bench.judge.types import Judgement, JudgeRequest, JudgeUnavailable, failed
from rpo_bench.openai_client import (
    AttemptFailed,
    ChatClient,
    EndpointUnavailable,
    ReplyCutOff,
    parallel_requests,
    served_by,
    too_long,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-2024-05-13"  # the SysBench reference judge


class OpenAIJudge(Judge):
    """Judge with a chat model behind an OpenAI-compatible endpoint, `concurrency` at a time.

    Each turn gets up to `max_attempts` calls (temperature 0 for the first five, then 0.5);
    an unparseable answer or a failed call uses one attempt. HTTP 408/429/5xx, timeouts and
    connection errors back off exponentially (`backoff` * 2^k seconds, at most
    `max_backoff`, or the server's Retry-After). What cannot heal (no such host, nothing
    listening, HTTP 401/403/404) raises JudgeUnavailable at once. A reply the server cut at a
    token limit is not retried unchanged: the turn fails as "cut_off", its partial answer kept.
    `json_schema`: ask the server to constrain the answer to the prompt's answer schema
    (`response_format` json_schema; llama.cpp and vLLM honour it), so every answer parses.
    `concurrency` unset: 8, or for a server on this machine its slot count
    (`openai_client.default_concurrency`). Every raw answer, failed ones included, goes in
    `outputs` / `answer` for the cache.
    `client`: the endpoint options (`openai_client.CLIENT_OPTIONS`).
    """

    kind = "openai"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        base_url: str = DEFAULT_BASE_URL,
        concurrency: int | None = None,
        max_tokens: int | None = None,
        cache: JudgeCache | str | Path | None = None,
        prompt: str | JudgePrompt = DEFAULT_PROMPT,
        rejudge_errors: bool = False,
        json_schema: bool = False,
        **client: Any,
    ) -> None:
        super().__init__(cache, prompt, rejudge_errors)
        if json_schema and self.prompt.schema is None:
            raise ValueError(
                f"json_schema needs a prompt with a JSON answer; {self.prompt.name!r} has none "
                "(use prompt rpo_bench)"
            )
        self.json_schema = json_schema
        if concurrency is not None and concurrency < 1:  # said now, not at the first turn
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.client = ChatClient(model, base_url, **{"max_attempts": MAX_ATTEMPTS, **client})
        self.model = model
        self.api_key_env = self.client.api_key_env  # the variable's NAME only
        self._concurrency = concurrency
        self.max_attempts = self.client.max_attempts
        self.max_tokens = max_tokens
        self.endpoint = self.client.endpoint

    @property
    def concurrency(self) -> int:  # type: ignore[override]
        """Parallel requests: as configured, else decided (and logged) on first use."""
        if self._concurrency is None:
            self._concurrency = parallel_requests(self.client, None, "judge")
        return self._concurrency

    @property
    def name(self) -> str:
        return self.model

    @property
    def identity(self) -> str:
        # What changes the answers keys the cache; unset options keep the old keys.
        extra = ("|json_schema" if self.json_schema else "") + (
            f"|max_tokens={self.max_tokens}" if self.max_tokens else ""
        )
        return f"openai|{self.model}|{served_by(self.endpoint)}{extra}"

    def check(self) -> None:
        """The endpoint answers for this model (`ChatClient.check`), or JudgeUnavailable."""
        try:
            self.client.check()
        except EndpointUnavailable as err:
            raise JudgeUnavailable(f"judge {self.model}: {err}") from None

    def _judge_uncached(self, request: JudgeRequest) -> Judgement:
        messages = self.prompt.messages(request)
        response_format = None
        if self.json_schema and self.prompt.schema is not None:
            schema = self.prompt.schema(request)
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": "judgement", "schema": schema},
            }
        outputs: list[str] = []
        last = ""
        waits = 0
        for attempt in range(self.max_attempts):
            try:
                text = self.client.complete(
                    messages,
                    whole=True,
                    temperature=temperature_for(attempt),
                    max_tokens=self.max_tokens,
                    response_format=response_format,
                )[0]
            except EndpointUnavailable as err:
                raise JudgeUnavailable(str(err)) from None
            except ReplyCutOff as err:
                outputs.append(err.text)
                log.warning("judge %s: %s; not retried", self.endpoint, err)
                return failed(str(err), attempt + 1, outputs, "cut_off")
            except AttemptFailed as err:
                last = str(err)
                if err.then == "stop":
                    message = f"judge request rejected: {last}"
                    kind = "too_long" if too_long(last) else "request"
                    return failed(message, attempt + 1, outputs, kind)
                if err.then == "backoff" and attempt + 1 < self.max_attempts:
                    delay = self.client.delay(waits, err)
                    waits += 1
                    log.warning(
                        "judge %s: attempt %d failed (%s); retrying in %.2fs",
                        self.endpoint,
                        attempt + 1,
                        last,
                        delay,
                    )
                    time.sleep(delay)
                continue
            judgement, why = try_parse(self.prompt, text, request, attempt)
            if judgement is not None:
                judgement.answer = self.client.scrub(text)  # what the answers cache keeps
                judgement.outputs = outputs  # the earlier, unparseable answers: kept too
                return judgement
            outputs.append(self.client.scrub(text))
            last = why
            log.info("judge %s: attempt %d unparseable: %s", self.endpoint, attempt + 1, why)
        message = f"judge failed after {self.max_attempts} attempts; last: {last}"
        parsed_none = len(outputs) == self.max_attempts  # else some calls failed outright
        return failed(
            message, self.max_attempts, outputs, "unparseable" if parsed_none else "request"
        )
