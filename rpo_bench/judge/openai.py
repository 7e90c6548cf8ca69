"""A judge behind any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, vLLM, ...).

Uses only the standard library. The API key is read from an environment variable at
request time and never kept on the object, so it cannot leak through a repr, a cache
row or an exception; any text that came back from the server is scrubbed of it too.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rpo_bench.judge.base import (
    MAX_ATTEMPTS,
    Judge,
    Judgement,
    JudgeRequest,
    JudgeUnavailable,
    failed,
    log,
    temperature_for,
    try_parse,
)
from rpo_bench.judge.cache import JudgeCache
from rpo_bench.judge.prompt import judge_messages

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-2024-05-13"  # the SysBench reference judge
# Statuses that say the configuration is wrong: every turn would fail the same way.
_FATAL = {401: "unauthorised", 403: "forbidden", 404: "not found (model or URL)"}
_TRANSIENT = {408, 409, 425, 429}  # plus every 5xx


class _AttemptFailed(Exception):
    """One call failed. `then`: "backoff" (wait, retry), "retry" (at once), "stop" (give up)."""

    def __init__(self, message: str, then: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.then = then
        self.retry_after = retry_after


def _endpoints(base_url: str) -> tuple[str, str]:
    """(URL to call, URL safe to log and cache: no user:password, no query string)."""
    parts = urllib.parse.urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions"
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    call = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    return call, urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))


class OpenAIJudge(Judge):
    """Judge with a chat model behind an OpenAI-compatible endpoint, `concurrency` at a time.

    Each turn gets up to `max_attempts` calls (temperature 0 for the first five, then 0.5).
    HTTP 408/429/5xx, timeouts and connection errors back off exponentially
    (`backoff` * 2^k seconds, at most `max_backoff`, or the server's Retry-After).
    HTTP 401/403/404 raise JudgeUnavailable at once.
    """

    kind = "openai"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        base_url: str = DEFAULT_BASE_URL,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 120.0,
        max_attempts: int = MAX_ATTEMPTS,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_tokens: int | None = None,
        cache: JudgeCache | str | Path | None = None,
    ) -> None:
        super().__init__(cache)
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self.model = model
        self.api_key_env = api_key_env  # the variable's NAME only
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_tokens = max_tokens
        self._url, self.endpoint = _endpoints(base_url)

    @property
    def name(self) -> str:
        return self.model

    @property
    def identity(self) -> str:
        return f"openai|{self.model}|{self.endpoint}"

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def _scrub(self, text: str) -> str:
        """Remove the API key from text that came from elsewhere (a server may echo it)."""
        key = self._key()
        return text.replace(key, "***") if key else text

    def _complete(self, messages: Sequence[dict[str, str]], temperature: float) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": temperature,
        }
        if self.max_tokens:
            body["max_tokens"] = self.max_tokens
        headers = {"Content-Type": "application/json"}
        key = self._key()
        if key:  # local servers (vLLM) often need none
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(
            self._url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as err:
            detail = self._scrub(_read_error_body(err))
            if err.code in _FATAL:
                raise JudgeUnavailable(
                    f"{self.endpoint} answered HTTP {err.code} {_FATAL[err.code]}: {detail} "
                    f"(check the base URL, the model {self.model!r} and ${self.api_key_env})"
                ) from None
            # Other 4xx are about this request (e.g. too long): resending it cannot help.
            then = "backoff" if err.code in _TRANSIENT or err.code >= 500 else "stop"
            raise _AttemptFailed(
                f"HTTP {err.code}: {detail}", then, _retry_after(err.headers)
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            # OSError covers timeouts and refused or reset connections.
            reason = getattr(err, "reason", err)
            raise _AttemptFailed(f"{type(err).__name__}: {reason}", "backoff") from None
        try:
            content = json.loads(payload)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _AttemptFailed(
                f"not a chat completion: {self._scrub(payload[:200].decode('utf-8', 'replace'))}",
                "retry",
            ) from None
        if not isinstance(content, str):
            raise _AttemptFailed("chat completion has no text content", "retry")
        return content

    def _judge_uncached(self, request: JudgeRequest) -> Judgement:
        messages = judge_messages(request)
        outputs: list[str] = []
        last = ""
        waits = 0
        for attempt in range(self.max_attempts):
            try:
                text = self._complete(messages, temperature_for(attempt))
            except _AttemptFailed as err:
                last = str(err)
                if err.then == "stop":
                    return failed(f"judge request rejected: {last}", attempt + 1, outputs)
                if err.then == "backoff" and attempt + 1 < self.max_attempts:
                    delay = min(self.max_backoff, self.backoff * 2**waits)
                    if err.retry_after is not None:
                        delay = min(self.max_backoff, max(delay, err.retry_after))
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
            judgement, why = try_parse(text, request, attempt)
            if judgement is not None:
                return judgement
            outputs.append(self._scrub(text))
            last = why
            log.info("judge %s: attempt %d unparseable: %s", self.endpoint, attempt + 1, why)
        message = f"judge failed after {self.max_attempts} attempts; last: {last}"
        return failed(message, self.max_attempts, outputs)


def _read_error_body(err: urllib.error.HTTPError) -> str:
    try:
        return err.read()[:300].decode("utf-8", "replace")
    except Exception:  # the body is only a hint for the message
        return err.reason if isinstance(err.reason, str) else ""


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
