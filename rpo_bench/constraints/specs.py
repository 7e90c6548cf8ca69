"""The 25 IFEval instruction ids: their kwargs, how each reads, and how each reverses.

Checking is lm-eval's (see `constraint.py`); this table only says what a
constraint is called, what arguments it takes, and what its complement says.

Three kinds of reversal:
- threshold ids (`relation` set) reverse by flipping "at least N" <-> "less than N";
  "less than N" is described as "at most N-1" because that is what it means;
- other reversible ids reverse to the negation of their check, with their own text;
- `reversed_text is None`: no exact complement reads naturally (NON_REVERSIBLE says why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lm_eval.tasks.ifeval.instructions_util import LANGUAGE_CODES

AT_LEAST, LESS_THAN = "at least", "less than"
RELATIONS = (LESS_THAN, AT_LEAST)

Text = Callable[[dict], str]


@dataclass(frozen=True)
class Spec:
    kwargs: dict[str, type] = field(default_factory=dict)  # all required
    text: Text = lambda kw: ""
    reversed_text: Text | None = None
    relation: str | None = None  # the kwarg holding "at least" / "less than"


def amount(relation: str, n: int, unit: str, units: str | None = None) -> str:
    """'at least 3 words', 'at most 2 words', 'no words': what the check really counts."""
    units = units or unit + "s"
    if relation == AT_LEAST:
        return f"at least {n} {unit if n == 1 else units}"
    if n <= 1:
        return f"no {units}"
    return f"at most {n - 1} {unit if n == 2 else units}"


def _occurs(subject: str, relation: str, n: int) -> str:
    if relation == LESS_THAN and n <= 1:
        return f"Do not use {subject} anywhere in your response."
    times = amount(relation, n, "time")
    return f"In your response, {subject} should appear {times}."


def _threshold(count: str, relation: str, unit: str, before: str, after: str = ".") -> Spec:
    """A threshold id whose text is `before`, the amount of `unit`s, then `after`."""
    return Spec(
        {count: int, relation: str},
        lambda kw: before + amount(kw[relation], kw[count], unit) + after,
        relation=relation,
    )


def _quoted_list(words: list[str]) -> str:
    quoted = [f"'{w}'" for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _language(code: str) -> str:
    return LANGUAGE_CODES.get(code, code)


_CONSTRAINED = '"My answer is yes.", "My answer is no." or "My answer is maybe."'

SPECS: dict[str, Spec] = {
    "change_case:capital_word_frequency": _threshold(
        "capital_frequency",
        "capital_relation",
        "word",
        "Your response must contain ",
        " written entirely in capital letters.",
    ),
    "change_case:english_capital": Spec(
        {},
        lambda kw: "Your entire response must be in English, using capital letters only.",
        lambda kw: (
            "Do not write your entire response in English capital letters; "
            "use lowercase letters or another language for at least part of it."
        ),
    ),
    "change_case:english_lowercase": Spec(
        {},
        lambda kw: (
            "Your entire response must be in English, using lowercase letters only; "
            "no capital letters are allowed."
        ),
        lambda kw: (
            "Do not write your entire response in English lowercase letters; "
            "use at least one capital letter or another language."
        ),
    ),
    "combination:repeat_prompt": Spec(
        {"prompt_to_repeat": str},
        lambda kw: (
            "Begin your response by repeating the following request word for word, "
            "with nothing before it, then answer it: " + kw["prompt_to_repeat"]
        ),
        lambda kw: (
            "Do not begin your response by repeating the request word for word; "
            "start directly with your answer. The request: " + kw["prompt_to_repeat"]
        ),
    ),
    "combination:two_responses": Spec(
        {},
        lambda kw: (
            "Give two different responses, separated by six asterisks (******) and nothing else."
        ),
    ),
    "detectable_content:number_placeholders": Spec(
        {"num_placeholders": int},
        lambda kw: (
            "Your response must contain "
            + amount(AT_LEAST, kw["num_placeholders"], "placeholder")
            + " in square brackets, such as [address]."
        ),
        lambda kw: (
            "Your response must contain "
            + amount(LESS_THAN, kw["num_placeholders"], "placeholder")
            + " in square brackets, such as [address]."
        ),
    ),
    "detectable_content:postscript": Spec(
        {"postscript_marker": str},
        lambda kw: (
            f"At the end of your response, add a postscript starting with {kw['postscript_marker']}"
        ),
        lambda kw: (
            f"Do not add a postscript: the marker {kw['postscript_marker']} must not "
            "appear anywhere in your response."
        ),
    ),
    "detectable_format:constrained_response": Spec(
        {},
        lambda kw: f"Answer with exactly one of the following: {_CONSTRAINED}",
        lambda kw: f"Do not use any of the phrases {_CONSTRAINED} in your response.",
    ),
    "detectable_format:json_format": Spec(
        {},
        lambda kw: (
            "Your entire output must be valid JSON; you may wrap it in markdown code fences (```)."
        ),
        lambda kw: "Do not answer in JSON: your response must not be a valid JSON document.",
    ),
    "detectable_format:multiple_sections": Spec(
        {"section_spliter": str, "num_sections": int},
        lambda kw: (
            f"Your response must have {amount(AT_LEAST, kw['num_sections'], 'section')}"
            f", each beginning with '{kw['section_spliter']} X', such as "
            f"'{kw['section_spliter']} 1'."
        ),
        lambda kw: (
            f"Your response must have {amount(LESS_THAN, kw['num_sections'], 'section')}"
            f" marked '{kw['section_spliter']} X' (such as '{kw['section_spliter']} 1')."
        ),
    ),
    "detectable_format:number_bullet_lists": Spec(
        {"num_bullets": int},
        lambda kw: (
            f"Your answer must contain exactly {kw['num_bullets']} markdown bullet "
            "points, such as:\n* This is point 1.\n* This is point 2"
        ),
    ),
    "detectable_format:number_highlighted_sections": Spec(
        {"num_highlights": int},
        lambda kw: (
            "Highlight "
            + amount(AT_LEAST, kw["num_highlights"], "section")
            + " of your answer with markdown, i.e. *highlighted section*."
        ),
        lambda kw: (
            "Do not highlight any section of your answer with markdown "
            "(such as *highlighted section*)."
            if kw["num_highlights"] <= 1
            else "Highlight "
            + amount(LESS_THAN, kw["num_highlights"], "section")
            + " of your answer with markdown (such as *highlighted section*), no more."
        ),
    ),
    "detectable_format:title": Spec(
        {},
        lambda kw: (
            "Your answer must contain a title, wrapped in double angular brackets, "
            "such as <<poem of joy>>."
        ),
        lambda kw: (
            "Do not give your answer a title wrapped in double angular brackets "
            "(such as <<poem of joy>>)."
        ),
    ),
    "keywords:existence": Spec(
        {"keywords": list},
        lambda kw: f"Include the keywords {_quoted_list(kw['keywords'])} in your response.",
        lambda kw: (
            f"Do not use the word '{kw['keywords'][0]}' in your response, not even as part "
            "of another word."
            if len(kw["keywords"]) == 1
            else f"Do not use all of the keywords {_quoted_list(kw['keywords'])}: leave at "
            "least one of them out of your response entirely."
        ),
    ),
    "keywords:forbidden_words": Spec(
        {"forbidden_words": list},
        lambda kw: (
            f"Do not include the word{'s' if len(kw['forbidden_words']) > 1 else ''} "
            f"{_quoted_list(kw['forbidden_words'])} in your response."
        ),
        lambda kw: (
            "Your response must include "
            + (
                f"the word '{kw['forbidden_words'][0]}'."
                if len(kw["forbidden_words"]) == 1
                else f"at least one of the words {_quoted_list(kw['forbidden_words'])}."
            )
        ),
    ),
    "keywords:frequency": Spec(
        {"keyword": str, "frequency": int, "relation": str},
        lambda kw: _occurs(f"the word '{kw['keyword']}'", kw["relation"], kw["frequency"]),
        relation="relation",
    ),
    "keywords:letter_frequency": Spec(
        {"letter": str, "let_frequency": int, "let_relation": str},
        lambda kw: _occurs(f"the letter '{kw['letter']}'", kw["let_relation"], kw["let_frequency"]),
        relation="let_relation",
    ),
    "language:response_language": Spec(
        {"language": str},
        lambda kw: (
            f"Your ENTIRE response must be in {_language(kw['language'])}; "
            "no other language is allowed."
        ),
        lambda kw: (
            f"Do not respond in {_language(kw['language'])}: write your response "
            "in a different language."
        ),
    ),
    "length_constraints:nth_paragraph_first_word": Spec(
        {"num_paragraphs": int, "nth_paragraph": int, "first_word": str},
        lambda kw: (
            f"Write exactly {kw['num_paragraphs']} paragraphs, separated from each "
            f"other by two new lines. Paragraph {kw['nth_paragraph']} must start with the word "
            f"'{kw['first_word']}'."
        ),
    ),
    "length_constraints:number_paragraphs": Spec(
        {"num_paragraphs": int},
        lambda kw: (
            f"Write exactly {kw['num_paragraphs']} paragraphs, separated from each "
            "other by the markdown divider ***."
        ),
    ),
    "length_constraints:number_sentences": _threshold(
        "num_sentences", "relation", "sentence", "Your response must contain "
    ),
    "length_constraints:number_words": _threshold("num_words", "relation", "word", "Answer with "),
    "punctuation:no_comma": Spec(
        {},
        lambda kw: "Do not use any commas in your response.",
        lambda kw: "Your response must contain at least one comma.",
    ),
    "startend:end_checker": Spec(
        {"end_phrase": str},
        lambda kw: (
            f"Finish your response with the exact phrase '{kw['end_phrase']}'. "
            "No other words should follow it."
        ),
        lambda kw: f"Do not end your response with the phrase '{kw['end_phrase']}'.",
    ),
    "startend:quotation": Spec(
        {},
        lambda kw: "Wrap your entire response in double quotation marks.",
        lambda kw: "Do not wrap your entire response in double quotation marks.",
    ),
}

NON_REVERSIBLE: dict[str, str] = {
    "combination:two_responses": "the complement (not exactly two distinct responses "
    "separated by ******) is a disjunction of unrelated failures, not one instruction",
    "detectable_format:number_bullet_lists": "'exactly N bullets' reverses to 'any number "
    "but N', which is two-sided and no model can aim at it naturally",
    "length_constraints:number_paragraphs": "'exactly N paragraphs separated by ***' reverses "
    "to 'any other count, or an empty paragraph', two-sided and unnatural",
    "length_constraints:nth_paragraph_first_word": "a conjunction (paragraph count AND first "
    "word); its complement is a disjunction that no single natural instruction states",
}

assert set(NON_REVERSIBLE) == {
    i for i, s in SPECS.items() if s.reversed_text is None and s.relation is None
}
