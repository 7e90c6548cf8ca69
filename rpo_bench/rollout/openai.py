"""Generation with any OpenAI-compatible chat endpoint (OpenAI, a vLLM server, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rpo_bench.openai_client import ChatClient, is_local, parallel_requests
from rpo_bench.rollout.settings import GenerationSettings

Message = dict[str, str]


class OpenAIBackend:
    """A chat model behind /v1/chat/completions, `concurrency` requests at a time (unset:
    8, or for a server on this machine its slot count, `openai_client.default_concurrency`).

    temperature, top_p, max_tokens (= max_new_tokens) and seed are sent with every request.
    `settings.n` samples come from one request with the `n` parameter, or, with
    `use_n=False` (servers without it), from n requests seeded seed, seed+1, ...
    `client`: the endpoint options (`openai_client.CLIENT_OPTIONS`: api_key_env, timeout,
    max_attempts, backoff, max_backoff). Transient failures are retried with exponential
    backoff (see ChatClient); a chat that
    still fails raises RequestFailed, a configuration error (401/403/404)
    EndpointUnavailable: a rollout with a missing reply cannot go on.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        concurrency: int | None = None,
        use_n: bool = True,
        **client: Any,
    ) -> None:
        if not is_local(base_url):  # a long generation takes longer than a judgement
            client = {"timeout": 300.0, **client}
        self.client = ChatClient(model, base_url, **client)
        self.concurrency = parallel_requests(self.client, concurrency, "rollout")
        self.use_n = use_n

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.client.model!r}, {self.client.endpoint!r})"

    def _sample(self, chat: Sequence[Message], settings: GenerationSettings, n: int, seed: int):
        params = {
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_new_tokens,
            "seed": seed,
            "n": n if n > 1 else None,
        }
        replies = self.client.request(chat, **params)
        if len(replies) != n:
            raise ValueError(
                f"{self.client.endpoint} returned {len(replies)} choices for n={n}; "
                "use use_n=False for servers without the n parameter"
            )
        return replies

    def _generate_one(self, chat: Sequence[Message], settings: GenerationSettings) -> list[str]:
        if self.use_n:
            return self._sample(chat, settings, settings.n, settings.seed)
        return [self._sample(chat, settings, 1, settings.seed + i)[0] for i in range(settings.n)]

    def generate(
        self, chats: Sequence[Sequence[Message]], settings: GenerationSettings
    ) -> list[list[str]]:
        """`settings.n` replies per chat, in order."""
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            return list(pool.map(lambda c: self._generate_one(c, settings), chats))
        finally:
            # After a failure the queued chats are not sent.
            pool.shutdown(wait=True, cancel_futures=True)
