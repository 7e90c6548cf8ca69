"""Keys and values of earlier sequences, reused for prompts that start with them.

Turn k+1 of a conversation is turn k's prompt, the reply just generated and one more
user message. Prefilling it from scratch recomputes the whole history; with the keys
and values the decode loop already holds for "prompt + reply", only the new tail is
computed. Lookup is by hashes of 16-token blocks, chained so a block's hash stands for
the whole prefix up to it (as vLLM's prefix caching does), then token by token.
The store holds at most `max_bytes` and forgets the oldest sequences first.

Only a prompt that runs past the end of a remembered sequence's prompt into its
generated reply reuses it: a later turn of that conversation. So a prompt is never
computed from another call's keys for the same prompt, and a repeated call, or a
single-turn task after sampling, gives what it gives alone.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

BLOCK = 16
MAX_CANDIDATES = 8


@dataclass
class Prefix:
    ids: list[int]  # the tokens whose keys and values are held
    prompt_length: int  # ids[:prompt_length] was the prompt, the rest generated
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # per layer [heads, len(ids), dim]

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in self.layers)


def _chain(ids: Sequence[int]) -> list[int]:
    """Hash of each whole 16-token block prefix: h[b] stands for ids[: (b + 1) * BLOCK]."""
    hashes, h = [], 0
    for start in range(0, len(ids) - BLOCK + 1, BLOCK):
        h = hash((h, tuple(ids[start : start + BLOCK])))
        hashes.append(h)
    return hashes


class PrefixStore:
    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes, self.nbytes = max_bytes, 0
        self._entries: OrderedDict[int, Prefix] = OrderedDict()
        self._blocks: dict[int, list[int]] = {}  # chained block hash -> entries holding it
        self._next = 0
        self.reused_tokens = self.looked_up_tokens = 0  # counters, for benchmarks

    def add(self, prefix: Prefix) -> None:
        if prefix.nbytes > self.max_bytes or len(prefix.ids) < BLOCK:
            return
        key, self._next = self._next, self._next + 1
        self._entries[key] = prefix
        self.nbytes += prefix.nbytes
        for h in _chain(prefix.ids):
            self._blocks.setdefault(h, []).append(key)
        while self.nbytes > self.max_bytes:
            old_key, old = self._entries.popitem(last=False)
            self.nbytes -= old.nbytes
            for h in _chain(old.ids):
                holders = self._blocks[h]
                holders.remove(old_key)
                if not holders:
                    del self._blocks[h]

    def match(self, ids: Sequence[int]) -> tuple[int, Prefix | None]:
        """(n, entry): the entry's first n keys/values are those of ids[:n], n < len(ids)
        (at least one token is left to compute the next-token logits) and n runs into the
        entry's generated reply; (0, None) if no entry qualifies."""
        self.looked_up_tokens += len(ids)
        held = []
        for h in _chain(ids[: len(ids) - 1]):
            if h not in self._blocks:
                break
            held.append(self._blocks[h])
        # Candidates: holders of the deepest blocks first, newest first; a few suffice.
        candidates: dict[int, None] = {}
        for keys in reversed(held):
            for k in reversed(keys):
                candidates.setdefault(k)
                if len(candidates) == MAX_CANDIDATES:
                    break
            if len(candidates) == MAX_CANDIDATES:
                break
        best, best_entry = 0, None
        for key in candidates:
            entry = self._entries[key]
            n, limit = 0, min(len(entry.ids), len(ids) - 1)
            while n < limit and entry.ids[n] == ids[n]:
                n += 1
            if n > entry.prompt_length and n > best:
                best, best_entry = n, entry
        self.reused_tokens += best
        return best, best_entry
