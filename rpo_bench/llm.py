"""An LLM in one of rpo_bench's helper roles (reverser, triggered filter, system-prompt
writer): greedy chat completions behind one small protocol, and its answers cached.

Every role asks the same way: look each chat up in the cache, send only the misses (in one
batch), keep an answer once the role has parsed it, so a rerun costs no calls and an
answer that could not be used is asked again next time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from rpo_bench.openai_client import ChatClient, served_by
from rpo_bench.textcache import TextCache, prompt_key

Message = dict[str, str]
T = TypeVar("T")
OPENAI = "https://api.openai.com/v1"


class Completer(Protocol):
    """Greedy chat completions; `identity` names what a cached answer belongs to."""

    identity: str

    def complete_many(self, chats: Sequence[Sequence[Message]]) -> list[str]: ...


class OpenAICompleter:
    """A model behind an OpenAI-compatible endpoint, temperature 0; `client` options as
    `openai_client.CLIENT_OPTIONS`. `max_tokens` bounds each answer (a small local model
    may otherwise write until its context is full); a cut answer is returned as it is, and
    the role's parser decides."""

    def __init__(
        self, model: str, base_url: str = OPENAI, max_tokens: int | None = None, **client: Any
    ) -> None:
        self.client = ChatClient(model, base_url, **client)
        self.max_tokens = max_tokens

    @property
    def identity(self) -> str:  # type: ignore[override]
        """Keyed like the judge: a local llama.cpp server by its model file, not its port."""
        limit = f"|max_tokens={self.max_tokens}" if self.max_tokens else ""
        return f"openai|{self.client.model}|{served_by(self.client.endpoint)}{limit}"

    def complete_many(self, chats: Sequence[Sequence[Message]]) -> list[str]:
        return [
            self.client.request(c, temperature=0.0, max_tokens=self.max_tokens)[0] for c in chats
        ]


class CachedCompleter:
    """A completer whose answers are kept in a `TextCache` (or none: every chat is asked).

    `ask(chats, parse)` gives each chat's parsed answer; `parse(i, text)` returns None for
    an answer the role cannot use, which is then not stored. `calls` counts the chats sent.
    """

    def __init__(self, completer: Completer, cache: TextCache | None = None) -> None:
        self.completer = completer
        self.cache = cache
        self.calls = 0

    @property
    def identity(self) -> str:
        return self.completer.identity

    def ask(
        self, chats: Sequence[Sequence[Message]], parse: Callable[[int, str], T | None]
    ) -> list[T | None]:
        keys = [prompt_key(c) for c in chats]
        texts = [self._cached(k) for k in keys]
        todo = [i for i, text in enumerate(texts) if text is None]
        asked = set(todo)
        if todo:
            self.calls += len(todo)
            answers = self.completer.complete_many([chats[i] for i in todo])
            for i, text in zip(todo, answers, strict=True):
                texts[i] = text
        out = []
        for i, text in enumerate(texts):
            parsed = parse(i, text or "")
            if parsed is not None and i in asked and self.cache is not None:
                self.cache.put_text(self.identity, keys[i], text or "")
            out.append(parsed)
        return out

    def _cached(self, key: str) -> str | None:
        return None if self.cache is None else self.cache.get_text(self.identity, key)
