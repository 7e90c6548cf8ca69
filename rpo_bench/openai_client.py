"""One client for OpenAI-compatible /v1/chat/completions endpoints (OpenAI, vLLM, ...).

Shared by the judge (`rpo_bench.judge.openai`) and the rollout backend
(`rpo_bench.rollout.openai`). Standard library only. The API key is read from an
environment variable at request time and never kept on the object, so it cannot leak
through a repr, a cache row or an exception; text that came back from the server is
scrubbed of it too.
"""

from __future__ import annotations

import http.client
import inspect
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("rpo_bench.openai_client")

# Statuses that say the configuration is wrong: every request would fail the same way.
FATAL = {401: "unauthorised", 403: "forbidden", 404: "not found (model or URL)"}
TRANSIENT = {408, 409, 425, 429}  # plus every 5xx
NEEDS_KEY = {"api.openai.com"}  # hosts known to refuse every request without one
PING = "Reply with OK."  # the pre-flight request's one message


def _client_options() -> tuple[str, ...]:
    params = inspect.signature(ChatClient.__init__).parameters
    return tuple(name for name in params if name not in ("self", "model", "base_url"))


class AttemptFailed(Exception):
    """One call failed. `then`: "backoff" (wait, retry), "retry" (at once), "stop" (give up)."""

    def __init__(
        self, message: str, then: str, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.then = then
        self.retry_after = retry_after
        self.status = status  # the HTTP status, where the server answered


class ReplyCutOff(AttemptFailed):
    """The server stopped the reply at a token limit (`finish_reason: length`): the same
    request would be cut at the same place, so it is never retried unchanged. `text` is the
    part that came back."""

    def __init__(self, text: str, tokens: int | None, context: int | None) -> None:
        n = "?" if tokens is None else tokens
        c = "?" if context is None else context
        super().__init__(f"reply cut off at {n} tokens (context {c})", "stop")
        self.text = text


class EndpointUnavailable(ConnectionError):
    """The endpoint cannot work at all (no such host, nothing listening, bad key, unknown
    model, wrong URL): retrying cannot help, so nothing retries it."""


class RequestFailed(ConnectionError):
    """A request still failed after every attempt (or was rejected as it stands)."""


def endpoints(base_url: str) -> tuple[str, str]:
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


class ChatClient:
    """Chat completions from one model at one endpoint.

    `complete` makes one call; `request` retries it, up to `max_attempts` calls: HTTP
    408/409/425/429/5xx, timeouts and connection errors back off exponentially (`backoff` *
    2^k seconds, at most `max_backoff`, or the server's Retry-After); a malformed payload is
    retried at once; other 4xx stop. What cannot heal raises EndpointUnavailable at once: a
    host name that does not resolve, a refused connection, HTTP 401/403/404. `check` is the
    pre-flight a run makes before its first request.

    `timeout` (seconds per call): where unset, 120 s, or for a server on this machine
    (`is_local`) 120 s plus 0.1 s per prompt token (estimated as 4 characters a token): a
    CPU server takes about 30 s for a 4,000-token prompt and shares its threads between
    slots, so a fixed 120 s times out on long judge prompts (`local_timeout`).
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float | None = None,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.model = model
        self.api_key_env = api_key_env  # the variable's NAME only
        self.timeout = timeout  # None: `timeout_for` each prompt
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._url, self.endpoint = endpoints(base_url)

    def __repr__(self) -> str:
        return f"ChatClient({self.model!r}, {self.endpoint!r})"

    def key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def scrub(self, text: str) -> str:
        """Remove the API key from text that came from elsewhere (a server may echo it)."""
        key = self.key()
        return text.replace(key, "***") if key else text

    def delay(self, waits: int, err: AttemptFailed) -> float:
        """Seconds to wait before the retry that follows `waits` earlier waits."""
        delay = min(self.max_backoff, self.backoff * 2**waits)
        if err.retry_after is not None:
            delay = min(self.max_backoff, max(delay, err.retry_after))
        return delay

    @property
    def local(self) -> bool:
        return is_local(self.endpoint)

    def timeout_for(self, messages: Sequence[dict[str, str]]) -> float:
        """This call's timeout: the configured one, else the default for where the server is."""
        if self.timeout is not None:
            return self.timeout
        if not self.local:
            return REMOTE_TIMEOUT
        return local_timeout(sum(len(m.get("content") or "") for m in messages))

    def complete(
        self, messages: Sequence[dict[str, str]], whole: bool = False, **params: Any
    ) -> list[str]:
        """One call; the choices' texts in index order. `params` left None are not sent.
        `whole`: a reply the server cut at a token limit raises ReplyCutOff (a judge needs
        the whole answer; a rollout's reply may end at max_tokens)."""
        body: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        body |= {k: v for k, v in params.items() if v is not None}
        headers = {"Content-Type": "application/json"}
        key = self.key()
        if key:  # local servers (vLLM) often need none
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(
            self._url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_for(messages)) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as err:
            detail = self.scrub(_read_error_body(err))
            if err.code in FATAL:
                raise EndpointUnavailable(
                    f"{self.endpoint} answered HTTP {err.code} {FATAL[err.code]}: {detail} "
                    f"(check the base URL, the model {self.model!r} and ${self.api_key_env})"
                ) from None
            # Other 4xx are about this request (e.g. too long): resending it cannot help.
            then = "backoff" if err.code in TRANSIENT or err.code >= 500 else "stop"
            raise AttemptFailed(
                f"HTTP {err.code}: {detail}", then, _retry_after(err.headers), err.code
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            # OSError covers timeouts and refused or reset connections.
            reason = getattr(err, "reason", err)
            why = _unreachable(reason)
            if why:
                raise EndpointUnavailable(
                    f"{self.endpoint}: {why}; check base_url, or start the server it names "
                    "(an OpenAI-compatible one: vLLM, llama.cpp's llama-server) first"
                ) from None
            raise AttemptFailed(f"{type(err).__name__}: {reason}", "backoff") from None
        try:
            data = json.loads(payload)
            choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
            contents = [c["message"]["content"] for c in choices]
            cut = [c.get("finish_reason") == "length" for c in choices]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise AttemptFailed(
                f"not a chat completion: {self.scrub(payload[:200].decode('utf-8', 'replace'))}",
                "retry",
            ) from None
        if not contents or not all(isinstance(c, str) for c in contents):
            raise AttemptFailed("chat completion has no text content", "retry")
        if whole and any(cut):
            usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
            tokens = usage.get("completion_tokens", params.get("max_tokens"))
            raise ReplyCutOff(self.scrub(contents[cut.index(True)]), tokens, self.context(usage))
        return contents

    def context(self, usage: dict[str, Any]) -> int | None:
        """The server's context per request (a local llama.cpp server's `/props`), else the
        tokens this request used (prompt + reply), else None."""
        if self.local and (props := server_props(self._url)) is not None:
            n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
            if isinstance(n_ctx, int):
                return n_ctx
        used = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
        return sum(used) if all(isinstance(u, int) for u in used) else None

    def check(self) -> None:
        """Pre-flight: does the endpoint answer for this model? One one-token request, not
        retried, so a run that cannot work stops in seconds, before any generation, with
        EndpointUnavailable naming the endpoint and what to do. A busy server (HTTP 429 or
        5xx) only warns: the run's own retries wait for it. Checked once per process."""
        if (self.endpoint, self.model) in _ANSWERED:
            return
        if not self.key() and urllib.parse.urlsplit(self.endpoint).hostname in NEEDS_KEY:
            raise EndpointUnavailable(
                f"{self.endpoint} needs an API key and ${self.api_key_env} is not set; set it, "
                "or point base_url at a server of your own (vLLM, llama.cpp's llama-server)"
            )
        try:
            self.complete([{"role": "user", "content": PING}], max_tokens=1)
        except AttemptFailed as err:
            if err.status in TRANSIENT or (err.status or 0) >= 500:
                log.warning("%s: pre-flight answered %s; going on", self.endpoint, err)
                return
            raise EndpointUnavailable(
                f"{self.endpoint}: the model {self.model!r} did not answer a one-token request "
                f"({err}); check base_url, the model name and ${self.api_key_env}"
            ) from None
        _ANSWERED.add((self.endpoint, self.model))

    def request(self, messages: Sequence[dict[str, str]], **params: Any) -> list[str]:
        """`complete`, retried up to `max_attempts` calls; RequestFailed when none succeeded."""
        waits, last, max_attempts = 0, "", self.max_attempts
        for attempt in range(max_attempts):
            try:
                return self.complete(messages, **params)
            except AttemptFailed as err:
                last = str(err)
                if err.then == "stop":
                    raise RequestFailed(f"{self.endpoint} rejected the request: {last}") from None
                if err.then == "backoff" and attempt + 1 < max_attempts:
                    delay = self.delay(waits, err)
                    waits += 1
                    log.warning(
                        "%s: attempt %d failed (%s); retrying in %.2fs",
                        self.endpoint,
                        attempt + 1,
                        last,
                        delay,
                    )
                    time.sleep(delay)
        raise RequestFailed(f"{self.endpoint}: failed after {max_attempts} attempts; last: {last}")


_ANSWERED: set[tuple[str, str]] = set()  # (endpoint, model) pairs whose pre-flight passed

REMOTE_TIMEOUT = 120.0  # seconds per call to a hosted API
LOCAL_BASE_TIMEOUT = 120.0  # a local server: this, plus LOCAL_SECONDS_PER_TOKEN per token
LOCAL_SECONDS_PER_TOKEN = 0.1
LOCAL_CONCURRENCY = 2  # a local server that does not say how many slots it has
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_local(url: str) -> bool:
    """Is the server on this machine (loopback)?"""
    return urllib.parse.urlsplit(url).hostname in LOCAL_HOSTS


def local_timeout(prompt_chars: int) -> float:
    """Seconds to wait for a local server: 120 s plus 0.1 s per prompt token (4 chars)."""
    return LOCAL_BASE_TIMEOUT + LOCAL_SECONDS_PER_TOKEN * prompt_chars / 4


_PROPS: dict[str, dict[str, Any] | None] = {}


def server_props(url: str) -> dict[str, Any] | None:
    """A llama.cpp server's `/props` (slots, context), read once per server; None where the
    server has none (vLLM, a hosted API) or does not answer in 5 s."""
    parts = urllib.parse.urlsplit(url)
    root = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/props", "", ""))
    if root not in _PROPS:
        try:
            with urllib.request.urlopen(root, timeout=5) as resp:
                props = json.loads(resp.read())
            _PROPS[root] = props if isinstance(props, dict) else None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
            _PROPS[root] = None
    return _PROPS[root]


# How servers say a prompt does not fit: llama.cpp's server, then OpenAI's and vLLM's.
TOO_LONG = ("exceeds the available context size", "exceed_context_size", "maximum context length")


def too_long(message: str) -> bool:
    """Does a rejected request's message say the prompt does not fit the context?"""
    return any(phrase in message for phrase in TOO_LONG)


def served_by(url: str) -> str:
    """What answers at `url`, for cache keys: a local llama.cpp server's model file name
    (`/props` `model_path`), so a restarted server on another port keys the same; else the
    URL itself."""
    path = (server_props(url) or {}).get("model_path") if is_local(url) else None
    return f"local:{Path(path).name}" if isinstance(path, str) and path else url


def default_concurrency(base_url: str, remote: int) -> tuple[int, str]:
    """(parallel requests, why) when a role's config sets none: a local server's slot count
    (llama.cpp's `/props` `total_slots`), else LOCAL_CONCURRENCY for any other local server,
    else `remote`."""
    if not is_local(base_url):
        return remote, "the default for a remote endpoint"
    slots = (server_props(base_url) or {}).get("total_slots")
    if isinstance(slots, int) and slots >= 1:
        return slots, f"the local server's {slots} slots"
    return LOCAL_CONCURRENCY, "the default for a local server that reports no slots"


def parallel_requests(client: ChatClient, concurrency: int | None, role: str) -> int:
    """A role's parallel requests: as configured (at least 1), else the default for where its
    server is (`default_concurrency`, 8 remote); logged with the timeout and why."""
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    why = "set in the config"
    if concurrency is None:
        concurrency, why = default_concurrency(client.endpoint, remote=8)
    log.info("%s %s", role, describe(client, concurrency, why))
    return concurrency


def describe(client: ChatClient, concurrency: int, why: str) -> str:
    """The log line that says which request settings a role uses."""
    if client.timeout is not None:
        timeout = f"timeout {client.timeout:g} s"
    elif client.local:
        timeout = (
            f"timeout {LOCAL_BASE_TIMEOUT:g} s + {LOCAL_SECONDS_PER_TOKEN:g} s per prompt token "
            "(local server)"
        )
    else:
        timeout = f"timeout {REMOTE_TIMEOUT:g} s"
    return f"{client.endpoint}: {concurrency} parallel requests ({why}), {timeout}"


def _unreachable(reason: Any) -> str | None:
    """Why a connection failed for good, or None where a retry may find it working."""
    if isinstance(reason, socket.gaierror):
        return f"its host name does not resolve ({reason.strerror or reason})"
    if isinstance(reason, ConnectionRefusedError):
        return "nothing is listening there (connection refused)"
    return None


# How any LLM role talks to its endpoint: the options every role's config `options` may
# set, declared once, by ChatClient's signature.
CLIENT_OPTIONS = _client_options()


def client_options(options: dict[str, Any]) -> dict[str, Any]:
    """The client's share of a role's options (a judge's also hold its prompt, cache, ...)."""
    return {k: v for k, v in options.items() if k in CLIENT_OPTIONS}


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
