"""How far an LLM's reversal of a constraint can be trusted, measured where the answer is
known: verifiable constraints have an exact reversal (`Constraint.reverse`), and
`matches_exact_reversal` says whether a reversed text states that exact complement (see
its docstring for the rule). benchmarks/llm_reversal.py reports the agreement.
"""

from __future__ import annotations

import re
from typing import Any

from lm_eval.tasks.ifeval.instructions_util import LANGUAGE_CODES

from rpo_bench.constraints.constraint import Constraint
from rpo_bench.constraints.specs import AT_LEAST, LESS_THAN

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
