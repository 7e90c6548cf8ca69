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
from typing import Any

from rpo_bench.constraints import any_from_dict
from rpo_bench.llm import CachedCompleter, Completer
from rpo_bench.textcache import TextCache

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


class TriggeredSelector:
    """`select` -> for each (system, query, constraints), the 0-based indices to judge.
    `calls`: chats sent to the LLM; `unparsed`: turns whose answer named no valid
    constraint, of which every constraint is kept."""

    def __init__(self, completer: Completer, cache: TextCache | None = None) -> None:
        self.llm = CachedCompleter(completer, cache)
        self.unparsed = 0

    @property
    def calls(self) -> int:
        return self.llm.calls

    def select(self, asks: Sequence[tuple[str, str, Sequence[str]]]) -> list[list[int]]:
        sizes = [len(constraints) for _, _, constraints in asks]
        chats = [triggered_messages(*a) for a in asks]
        chosen = self.llm.ask(chats, lambda i, text: parse_triggered(text, sizes[i]))
        out = []
        for n, numbers in zip(sizes, chosen, strict=True):
            if numbers is None:
                self.unparsed += 1
                out.append(list(range(n)))
            else:
                out.append([k - 1 for k in numbers])
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
