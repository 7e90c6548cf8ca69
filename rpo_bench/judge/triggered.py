"""Which constraints a user query triggers, chosen by an LLM (the authors' filter).

Before judging, the authors ask an LLM which of the system prompt's constraints the
current query brings into play; only those are judged and written into the pair's prompt.
(rpo_bench's own `keep_unanimous: false` is a different filter: it drops constraints on
which every sampled response agrees.) Answers are cached; one that names no valid ids
after its attempts is counted, and the caller keeps every constraint for that turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rpo_bench.constraints import any_from_dict
from rpo_bench.constraints.llm_reversal import Completer
from rpo_bench.textcache import TextCache, prompt_key

RULES = """\
You read an assistant's system prompt, its numbered constraints and the user's next \
message. Say which constraints the message brings into play: the ones a reply to this \
message could follow or break. A constraint about the assistant's identity, tone or \
format applies to every reply. Answer with a JSON list of constraint numbers only, \
e.g. [1, 3]."""

_LIST = re.compile(r"\[[\d\s,]*\]")


def triggered_messages(system: str, query: str, constraints: Sequence[str]) -> list[dict]:
    """The chat that asks which of `constraints` (numbered from 1) `query` triggers."""
    numbered = "\n".join(f"{k}. {c}" for k, c in enumerate(constraints, 1))
    user = f"System prompt:\n{system}\n\nConstraints:\n{numbered}\n\nUser message:\n{query}"
    return [{"role": "system", "content": RULES}, {"role": "user", "content": user}]


def parse_triggered(text: str, n: int) -> list[int] | None:
    """The 1-based constraint numbers the answer lists, sorted; None if it lists none
    validly (no JSON list of numbers, or a number outside 1..n)."""
    match = _LIST.search(text)
    if match is None:
        return None
    numbers = json.loads(match.group(0))
    if not numbers or any(not 1 <= k <= n for k in numbers):
        return None
    return sorted(set(numbers))


@dataclass
class TriggeredSelector:
    """`select` -> for each (system, query, constraints), the 0-based indices to judge."""

    completer: Completer
    cache: TextCache | None = None
    unparsed: int = 0  # turns whose answer named no valid constraint: all are kept
    calls: int = field(default=0, init=False)

    def select(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[list[int]]:
        chats = [triggered_messages(*a) for a in asks]
        keys = [prompt_key(c) for c in chats]
        texts: list[str | None] = [
            self.cache.get_text(self.completer.identity, k) if self.cache is not None else None
            for k in keys
        ]
        todo = [i for i, t in enumerate(texts) if t is None]
        if todo:
            self.calls += len(todo)
            for i, text in zip(
                todo, self.completer.complete_many([chats[i] for i in todo]), strict=True
            ):
                texts[i] = text
        out = []
        for i, ((_, _, constraints), text) in enumerate(zip(asks, texts, strict=True)):
            chosen = parse_triggered(text or "", len(constraints))
            if chosen is None:
                self.unparsed += 1
                out.append(list(range(len(constraints))))
                continue
            if self.cache is not None and i in todo:
                self.cache.put_text(self.completer.identity, keys[i], text or "")
            out.append([k - 1 for k in chosen])
        return out


def restrict(rows: Sequence[dict[str, Any]], selector: TriggeredSelector) -> list[dict[str, Any]]:
    """Samples rows cut down to the constraints each turn's query triggers: their
    `constraints` and every response's `verdicts` (and `true_verdicts`) keep only those, in
    order, so only they count in the pairs and are written into the pairs' prompts. Each row
    records `triggered`, the indices it kept of its original constraints."""
    asks = [
        (row.get("system") or "", row["task"],
         [any_from_dict(c).describe() for c in row["constraints"]])
        for row in rows
    ]  # fmt: skip
    out = []
    for row, keep in zip(rows, selector.select(asks), strict=True):

        def cut(values: list | None, keep: list[int] = keep) -> list | None:
            return None if values is None else [values[k] for k in keep]

        responses = [
            {**r, "verdicts": cut(r["verdicts"]),
             **({"true_verdicts": cut(r["true_verdicts"])} if "true_verdicts" in r else {})}
            for r in row["responses"]
        ]  # fmt: skip
        out.append({**row, "constraints": [row["constraints"][k] for k in keep],
                    "responses": responses, "triggered": keep})  # fmt: skip
    return out
