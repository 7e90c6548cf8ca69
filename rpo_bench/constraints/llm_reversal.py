"""Reverse free-text constraints with an LLM, by the authors' rules, cached on disk.

Free-text rules (SysBench-style) have no checker to negate, so the authors ask an LLM
once per rule at temperature 0. The prompt states their rules in our words: flip the
modal or the condition; every response failing the original must fully satisfy the
reverse; be explicit; numbers are exact complements (which their own example was not).

The LLM is any `rpo_bench.llm.Completer`; how far its reversals can be trusted is measured
against the exact reversals of verifiable constraints (`reversal_agreement`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rpo_bench.llm import CachedCompleter, Completer, Message
from rpo_bench.textcache import TextCache

RULES = """\
You turn an instruction into its exact opposite, so that a response can be judged \
against the opposite instead.
Rules:
1. Flip the modal (must <-> must not) or flip the condition.
2. Every response that fails the original instruction must fully satisfy your reversed \
instruction, and every response that follows the original must fail it.
3. Be explicit: say what the response must or must not do. Never write "may" or "can".
4. Numbers must be the exact complement: the opposite of "at least 4" is "at most 3", \
the opposite of "fewer than 4" is "at least 4".
5. Copy every quoted word, phrase or marker exactly.
Answer with the reversed instruction only, on one line."""

# Worked examples in the chat (a small model copies the format from them). Not drawn from
# the constraint library, so they give away no answer the benchmark asks for.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Mention the product name at least 2 times.", "Mention the product name at most 1 time."),
    ("Do not use emojis in your reply.", "Use at least one emoji in your reply."),
    ("Start your reply with the word 'Dear'.", "Do not start your reply with the word 'Dear'."),
)


def reversal_messages(text: str) -> list[Message]:
    """The chat sent to the LLM for one instruction."""
    messages = [{"role": "system", "content": RULES}]
    for original, reverse in EXAMPLES:
        messages += [
            {"role": "user", "content": f"Instruction: {original}"},
            {"role": "assistant", "content": reverse},
        ]
    return [*messages, {"role": "user", "content": f"Instruction: {text}"}]


_PREFIX = re.compile(r"^(?:reversed(?: instruction)?|opposite|answer|instruction)\s*:\s*", re.I)


def parse_reversal(completion: str) -> str:
    """The reversed instruction: the first non-blank line, without a label or wrapping quotes."""
    line = next((ln.strip() for ln in completion.splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line).strip()
    if len(line) > 1 and line[0] == line[-1] and line[0] in "\"'`":
        line = line[1:-1].strip()
    return line


class ReversalCache(TextCache):
    """The reverser's answers, keyed by (completer identity, prompt sha256)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "reversals")


class LLMReverser:
    """reverse(text) -> the reversed instruction; each distinct text costs one call ever."""

    def __init__(self, completer: Completer, cache: ReversalCache | str | Path | None = None):
        cache = ReversalCache(cache) if isinstance(cache, str | Path) else cache
        self.llm = CachedCompleter(completer, cache)

    def reverse(self, text: str) -> str:
        return self.reverse_many([text])[0]

    def reverse_many(self, texts: Sequence[str]) -> list[str]:
        """Reversals in order; cached ones cost nothing; an answer that parses to nothing
        is not cached (and reads as "")."""
        chats = [reversal_messages(t) for t in texts]
        return [
            r or "" for r in self.llm.ask(chats, lambda _, answer: parse_reversal(answer) or None)
        ]

    def reverse_checked(self, texts: Sequence[str]) -> tuple[list[str | None], dict[str, int]]:
        """Reversals that pass `check_reversal` (None where one fails: the caller drops that
        constraint from the pair), and how many failed for each reason."""
        out: list[str | None] = []
        failures: dict[str, int] = {}
        for text, reversal in zip(texts, self.reverse_many(texts), strict=True):
            why = check_reversal(text, reversal)
            if why is not None:
                reason = why.split(" ", 1)[0] if why.startswith("quoted") else why
                failures[reason] = failures.get(reason, 0) + 1
            out.append(None if why else reversal)
        return out, failures


class CheckedReverser:
    """An `LLMReverser` for building pairs: a reversal that fails `check_reversal` gives
    None, so its constraint is left out of that pair's prompt rather than reversed badly.
    `counts()`: the distinct texts asked, validated and dropped, and why they were dropped."""

    def __init__(self, reverser: LLMReverser) -> None:
        self.reverser = reverser
        self.validated = 0
        self.failures: dict[str, int] = {}

    def __call__(self, text: str) -> str | None:
        (reversal,), failures = self.reverser.reverse_checked([text])
        self.validated += reversal is not None
        for reason, n in failures.items():
            self.failures[reason] = self.failures.get(reason, 0) + n
        return reversal

    def counts(self) -> dict[str, Any]:
        dropped = sum(self.failures.values())
        return {"asked": self.validated + dropped, "validated": self.validated,
                "dropped": dropped, "dropped_why": dict(sorted(self.failures.items()))}  # fmt: skip


_QUOTED = re.compile(r"[\"“「']([^\"”」']{1,80})[\"”」']")


def check_reversal(original: str, reversed_text: str) -> str | None:
    """Why an LLM's reversal of a free-text constraint cannot be used, or None if it can.

    Checks what can be checked without a judge: an answer, on one line, not the original
    again, not many times longer, and every quoted marker of the original copied exactly
    (rule 5 of the prompt; a reversal that loses the marker is about something else)."""
    text = reversed_text.strip()
    if not text:
        return "empty"
    if "\n" in text:
        return "more than one line"
    if text.casefold() == original.strip().casefold():
        return "same as the original"
    if len(text) > 3 * len(original) + 40:
        return "much longer than the original"
    missing = [q for q in _QUOTED.findall(original) if q not in text]
    if missing:
        return f"quoted {missing[0]!r} not copied"
    return None
