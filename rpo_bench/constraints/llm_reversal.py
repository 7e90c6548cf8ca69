"""Reverse free-text constraints with an LLM, by the authors' rules, cached on disk.

Free-text rules (SysBench-style) have no checker to negate, so the authors ask an LLM
once per rule at temperature 0. The prompt states their rules in our words: flip the
modal or the condition; every response failing the original must fully satisfy the
reverse; be explicit; numbers are exact complements (which their own example was not).

Verifiable constraints have an exact reversal (`Constraint.reverse`), so they measure
how far an LLM's reversal can be trusted: `matches_exact_reversal` says whether a
reversed text states the exact complement (see its docstring for the rule), and
benchmarks/llm_reversal.py reports the agreement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from lm_eval.tasks.ifeval.instructions_util import LANGUAGE_CODES

from rpo_bench.constraints.constraint import Constraint
from rpo_bench.constraints.specs import AT_LEAST, LESS_THAN
from rpo_bench.rollout.settings import GenerationSettings
from rpo_bench.textcache import TextCache, prompt_key

Message = dict[str, str]

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


# --- completion backends ----------------------------------------------------------------------


class Completer(Protocol):
    """Greedy chat completions; `identity` names what a cached answer belongs to."""

    identity: str

    def complete_many(self, chats: Sequence[Sequence[Message]]) -> list[str]: ...


class HFCompleter:
    """A local model through `rollout.HFBackend`, greedy (temperature 0), batched."""

    def __init__(self, backend: Any, max_new_tokens: int = 64) -> None:
        self.backend = backend
        self.settings = GenerationSettings(temperature=0.0, max_new_tokens=max_new_tokens)
        name = getattr(backend.model.config, "_name_or_path", "") or type(backend.model).__name__
        self.identity = f"hf|{name}|max_new_tokens={max_new_tokens}"

    def complete_many(self, chats: Sequence[Sequence[Message]]) -> list[str]:
        return [r[0] for r in self.backend.generate(chats, self.settings)]


class OpenAICompleter:
    """A model behind an OpenAI-compatible endpoint (`rpo_bench.openai_client`), temperature 0."""

    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str = "OPENAI_API_KEY",
        max_attempts: int = 5,
        **client_options: Any,
    ) -> None:
        from rpo_bench.openai_client import ChatClient

        self.client = ChatClient(model, base_url, api_key_env, **client_options)
        self.max_attempts = max_attempts
        self.identity = f"openai|{model}|{self.client.endpoint}"

    def complete_many(self, chats: Sequence[Sequence[Message]]) -> list[str]:
        return [self.client.request(c, self.max_attempts, temperature=0.0)[0] for c in chats]


# --- the cache and the reverser ---------------------------------------------------------------


class ReversalCache(TextCache):
    """Reversed texts keyed by (backend identity, prompt sha256)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "reversals")

    get = TextCache.get_text
    put = TextCache.put_text


class LLMReverser:
    """reverse(text) -> the reversed instruction; each distinct text costs one call ever."""

    def __init__(self, completer: Completer, cache: ReversalCache | str | Path | None = None):
        self.completer = completer
        self.cache = ReversalCache(cache) if isinstance(cache, str | Path) else cache

    def reverse(self, text: str) -> str:
        return self.reverse_many([text])[0]

    def reverse_many(self, texts: Sequence[str]) -> list[str]:
        """Reversals in order; cached ones cost nothing; an empty answer is not cached."""
        chats = [reversal_messages(t) for t in texts]
        keys = [prompt_key(c) for c in chats]
        out: list[str | None] = [
            self.cache.get(self.completer.identity, k) if self.cache is not None else None
            for k in keys
        ]
        todo = [i for i, hit in enumerate(out) if hit is None]
        if todo:
            answers = self.completer.complete_many([chats[i] for i in todo])
            for i, answer in zip(todo, answers, strict=True):
                out[i] = parse_reversal(answer)
                if self.cache is not None and out[i]:
                    self.cache.put(self.completer.identity, keys[i], out[i])
        return [o or "" for o in out]

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


# --- measuring against the exact reversal -----------------------------------------------------

# Count ids whose reversal moves a bound though they have no relation kwarg.
_COUNT_KWARG = {
    "detectable_content:number_placeholders": "num_placeholders",
    "detectable_format:multiple_sections": "num_sections",
    "detectable_format:number_highlighted_sections": "num_highlights",
}
_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
} | {"once": 1, "twice": 2, "thrice": 3}
_NUM = r"(\d+|" + "|".join(_NUMBER_WORDS) + r")"
# (pattern, bound kind, offset): "more than 3" is ">= 4", "at most 3" is "< 4".
_BOUNDS = (
    (r"at least " + _NUM, ">=", 0),
    (r"(?:no fewer than|no less than|not fewer than|not less than) " + _NUM, ">=", 0),
    (r"(?:more than|over|greater than|above) " + _NUM, ">=", 1),
    (r"(?:at most|no more than|not more than|up to|a maximum of|maximum of) " + _NUM, "<", 1),
    (r"(?:less than|fewer than|under|below) " + _NUM, "<", 0),
    (r"exactly " + _NUM, "==", 0),
)
_NEGATION = re.compile(r"\b(?:do not|don't|must not|mustn't|never|no|without|avoid|zero)\b")
_LEADING_NEGATION = re.compile(
    r"^(?:do not|don't|never|avoid|you must not|you should not|your (?:\w+ )?response must not"
    r"|must not|no )"
)


def _number(token: str) -> int:
    return int(token) if token.isdigit() else _NUMBER_WORDS[token]


def stated_bounds(text: str) -> set[tuple[str, int]]:
    """Count bounds a text states, normalised to (">=", n) / ("<", n) / ("==", n)."""
    low = text.lower()
    bounds = set()
    for pattern, kind, offset in _BOUNDS:
        for m in re.finditer(r"\b" + pattern + r"\b", low):
            bound = (kind, _number(m.group(1)) + offset)
            clause = re.split(r"[.;:!?]", low[: m.start()])[-1]
            if kind != "==" and _NEGATION.search(clause):  # "do not use more than 3" is "< 4"
                bound = ("<" if kind == ">=" else ">=", bound[1])
            bounds.add(bound)
    if not bounds:  # "do not use X" is "< 1"; "use X" is ">= 1"
        bounds.add(("<", 1) if _NEGATION.search(low) else (">=", 1))
    return bounds


def exact_bound(constraint: Constraint) -> tuple[str, int] | None:
    """The bound the exact reversal states, for count constraints; None for the others."""
    spec = constraint.spec
    if spec.relation:
        count = next(k for k, kind in spec.kwargs.items() if kind is int)
        relation, n = constraint.kwargs[spec.relation], constraint.kwargs[count]
    elif constraint.instruction_id in _COUNT_KWARG:
        relation = LESS_THAN if constraint.reversed else AT_LEAST
        n = constraint.kwargs[_COUNT_KWARG[constraint.instruction_id]]
    else:
        return None
    # the reversal flips the relation: "at least n" becomes "< n", "less than n" ">= n"
    return ("<", n) if relation == AT_LEAST else (">=", n)


# Strings an id's text names though no kwarg holds them.
_FIXED_STRINGS = {
    "detectable_format:constrained_response": [
        "My answer is yes.",
        "My answer is no.",
        "My answer is maybe.",
    ]
}


def _required_strings(constraint: Constraint) -> list[str]:
    out = list(_FIXED_STRINGS.get(constraint.instruction_id, []))
    for name, value in constraint.kwargs.items():
        if name == "language":
            out.append(LANGUAGE_CODES.get(value, value))
        elif isinstance(value, str) and value not in (AT_LEAST, LESS_THAN):
            out.append(value)
        elif isinstance(value, list):
            out += value
    return out


def matches_exact_reversal(constraint: Constraint, text: str) -> bool:
    """Whether `text` states the exact reversal of `constraint` (a verifiable one).

    A rule, not a judge: the text must differ from the original, name every word, phrase,
    marker and language the constraint names, and then
    - count constraints (threshold ids, placeholders, sections, highlights): state exactly
      the complement bound and no other (numbers in digits or words; "more than n" is
      ">= n+1", "at most n" is "< n+1", a negation earlier in the clause flips a bound: "do
      not use more than n" is "< n+1"; with no number, a negation means "< 1", else ">= 1");
      so "at least 3" -> "at most 3" (the authors' off-by-one) fails;
    - the other reversible ids: flip the polarity: the original opens with a prohibition
      ("Do not ...") exactly when the reversal does not.
    The exact reversal's own description passes and the original fails, for every
    reversible id (tests/test_llm_reversal.py).
    """
    original = constraint.describe()
    norm = " ".join(text.lower().split())
    if not norm or norm == " ".join(original.lower().split()):
        return False
    if not all(s.lower() in norm for s in _required_strings(constraint)):
        return False
    bound = exact_bound(constraint)
    if bound is not None:
        return stated_bounds(text) == {bound}
    return bool(_LEADING_NEGATION.match(norm)) != bool(_LEADING_NEGATION.match(original.lower()))


def examples() -> list[Constraint]:
    """Every reversible id, threshold ids with both relations and a bound of 1: the set
    benchmarks/llm_reversal.py asks an LLM to reverse."""
    from rpo_bench.constraints.constraint import from_ifeval

    def both(iid: str, count: str, relation: str, n: int, **rest: Any) -> list[Constraint]:
        return [
            from_ifeval(iid, {count: m, relation: r, **rest})
            for r, m in ((AT_LEAST, n), (LESS_THAN, n), (LESS_THAN, 1))
        ]

    return [
        *both("change_case:capital_word_frequency", "capital_frequency", "capital_relation", 3),
        *both("keywords:frequency", "frequency", "relation", 2, keyword="plan"),
        *both("keywords:letter_frequency", "let_frequency", "let_relation", 4, letter="z"),
        *both("length_constraints:number_sentences", "num_sentences", "relation", 5),
        *both("length_constraints:number_words", "num_words", "relation", 300),
        from_ifeval("change_case:english_capital"),
        from_ifeval("change_case:english_lowercase"),
        from_ifeval("combination:repeat_prompt", {"prompt_to_repeat": "Name a river."}),
        from_ifeval("detectable_content:number_placeholders", {"num_placeholders": 2}),
        from_ifeval("detectable_content:postscript", {"postscript_marker": "P.S."}),
        from_ifeval("detectable_format:constrained_response"),
        from_ifeval("detectable_format:json_format"),
        from_ifeval(
            "detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 3}
        ),
        from_ifeval("detectable_format:number_highlighted_sections", {"num_highlights": 2}),
        from_ifeval("detectable_format:title"),
        from_ifeval("keywords:existence", {"keywords": ["river"]}),
        from_ifeval("keywords:forbidden_words", {"forbidden_words": ["water"]}),
        from_ifeval("language:response_language", {"language": "fr"}),
        from_ifeval("punctuation:no_comma"),
        from_ifeval("startend:end_checker", {"end_phrase": "Any other questions?"}),
        from_ifeval("startend:quotation"),
    ]
