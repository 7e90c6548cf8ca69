"""A verifiable constraint: an IFEval instruction id plus kwargs, checkable and reversible."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from rpo_bench.constraints.punkt_data import ensure_punkt

ensure_punkt()  # before lm-eval's ifeval modules import: they download Punkt when it is missing

from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT  # noqa: E402
from lm_eval.tasks.ifeval.instructions_util import LANGUAGE_CODES  # noqa: E402

from rpo_bench.constraints import multilingual  # noqa: E402
from rpo_bench.constraints.specs import (  # noqa: E402
    AT_LEAST,
    LESS_THAN,
    NON_REVERSIBLE,
    RELATIONS,
    SPECS,
    Spec,
)

INSTRUCTION_IDS: tuple[str, ...] = tuple(sorted(SPECS))
assert set(INSTRUCTION_IDS) == set(INSTRUCTION_DICT), "lm-eval's IFEval registry changed"

LANGUAGES = ("en",)  # describe() languages


def _loose_variants(response: str) -> list[str]:
    """IFEval's loose rule: also try without the first/last line and without '*'."""
    lines = response.split("\n")
    cut = [
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return [response.replace("*", ""), *cut, *(c.replace("*", "") for c in cut)]


@dataclass(frozen=True)
class Constraint:
    """One instruction a response must follow.

    `reversed` marks the exact complement of an IFEval-built constraint. IFEval fails
    every instruction on a blank response, so the complement passes it: that is the
    only thing the flag changes for threshold ids, whose reversal is a flipped relation.
    `language` None keeps IFEval's English rules (lm-eval parity); a language code or
    "auto" (detect per response) applies Multi-IF's rules: its word, sentence, quote and
    keyword-frequency checks, and its blank-reply tests (see `check`, `check_loose`).
    """

    instruction_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    reversed: bool = False
    language: str | None = None

    @property
    def spec(self) -> Spec:
        return SPECS[self.instruction_id]

    @property
    def reversible(self) -> bool:
        return self.instruction_id not in NON_REVERSIBLE

    def describe(self, lang: str = "en") -> str:
        """The instruction text a model is shown."""
        if lang not in LANGUAGES:
            raise ValueError(f"describe(lang={lang!r}): supported languages are {LANGUAGES}")
        negated = self.reversed and self.spec.relation is None
        return (self.spec.reversed_text if negated else self.spec.text)(self.kwargs)

    def reverse(self) -> Constraint | None:
        """The exact complement: for every response, exactly one of the two passes."""
        if not self.reversible:
            return None
        kwargs = dict(self.kwargs)
        if self.spec.relation:
            old = kwargs[self.spec.relation]
            kwargs[self.spec.relation] = AT_LEAST if old == LESS_THAN else LESS_THAN
        return Constraint(self.instruction_id, kwargs, not self.reversed, self.language)

    def check(self, response: str) -> bool:
        """IFEval's strict rule: a blank response follows nothing (and its complement passes).

        Blank is whitespace-only for IFEval but only "" for Multi-IF (`language` set), whose
        scorer tests `if response`: there "   " is checked like any other text."""
        blank = not response if self.multi_if else not response.strip()
        if blank:
            return self.reversed
        negated = self.reversed and self.spec.relation is None
        return self._follows(response) != negated

    def check_loose(self, response: str) -> bool:
        """IFEval's loose rule: strict on the response or on any of its loose variants."""
        if self.multi_if and not self.reversed:
            # Multi-IF skips every whitespace-only candidate, the response itself included,
            # so a whitespace-only reply fails loosely even where it passes strictly.
            candidates = (response, *_loose_variants(response))
            return any(v.strip() and self.check(v) for v in candidates)
        return self.check(response) or any(
            v.strip() and self.check(v) for v in _loose_variants(response)
        )

    @property
    def multi_if(self) -> bool:
        """Whether Multi-IF's rules apply (a `language` is set) rather than IFEval's."""
        return self.language is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.instruction_id, "kwargs": dict(self.kwargs)}
        if self.reversed:
            out["reversed"] = True
        if self.language is not None:
            out["language"] = self.language
        return out

    def _follows(self, response: str) -> bool:
        if self.language is not None:
            rule = _MULTILINGUAL.get(self.instruction_id)
            if rule is not None:
                return rule(self.kwargs, response, self.language)
        return self._checker.check_following(response)

    @functools.cached_property
    def _checker(self) -> Any:
        checker = INSTRUCTION_DICT[self.instruction_id](self.instruction_id)
        checker.build_description(**self.kwargs)
        if self.instruction_id == "keywords:letter_frequency":
            # lm-eval swaps a non-letter (IFEval asks for '#' and '!') for a RANDOM letter,
            # which would make verdicts random; count the character that was asked for.
            checker._letter = self.kwargs["letter"].lower()
        return checker


def _compare(count: int, relation: str, n: int) -> bool:
    return count < n if relation == LESS_THAN else count >= n


_MULTILINGUAL = {
    "length_constraints:number_words": lambda kw, r, lang: _compare(
        multilingual.count_words(r, lang), kw["relation"], kw["num_words"]
    ),
    "length_constraints:number_sentences": lambda kw, r, lang: _compare(
        multilingual.count_sentences(r, lang), kw["relation"], kw["num_sentences"]
    ),
    "startend:quotation": lambda kw, r, lang: multilingual.is_quoted(r),
    "keywords:frequency": lambda kw, r, lang: _keyword_frequency(kw, r),
}


def _keyword_frequency(kwargs: dict[str, Any], response: str) -> bool:
    # Multi-IF counts the keyword as a regex, like IFEval, but a keyword that is no valid
    # regex (say ":-(") fails the instruction there instead of raising.
    try:
        count = len(re.findall(kwargs["keyword"].strip(), response, flags=re.IGNORECASE))
    except re.error:
        return False
    return _compare(count, kwargs["relation"], kwargs["frequency"])


def _validate(instruction_id: str, kwargs: dict[str, Any]) -> None:
    spec = SPECS[instruction_id]
    for name in kwargs:
        if name not in spec.kwargs:
            raise ValueError(
                f"{instruction_id}: unexpected kwarg {name!r}; it takes "
                f"{sorted(spec.kwargs) or 'no kwargs'}"
            )
    for name, kind in spec.kwargs.items():
        if name not in kwargs:
            raise ValueError(f"{instruction_id}: missing kwarg {name!r}")
        value = kwargs[name]
        where = f"{instruction_id}: kwarg {name!r}"
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{where} must be an integer, got {value!r}")
            if value < 0:
                raise ValueError(f"{where} must be >= 0, got {value}")
        elif kind is str:
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where} must be a non-empty string, got {value!r}")
        elif kind is list:
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) and v.strip() for v in value)
            ):
                raise ValueError(f"{where} must be a non-empty list of strings, got {value!r}")
    if spec.relation and kwargs[spec.relation] not in RELATIONS:
        raise ValueError(
            f"{instruction_id}: kwarg {spec.relation!r} must be one of {RELATIONS}, "
            f"got {kwargs[spec.relation]!r}"
        )
    if instruction_id == "keywords:letter_frequency" and len(kwargs["letter"]) != 1:
        raise ValueError(f"{instruction_id}: kwarg 'letter' must be one character")
    if instruction_id == "language:response_language" and kwargs["language"] not in LANGUAGE_CODES:
        raise ValueError(
            f"{instruction_id}: kwarg 'language' must be one of {sorted(LANGUAGE_CODES)}, "
            f"got {kwargs['language']!r}"
        )


def from_ifeval(
    instruction_id: str,
    kwargs: dict[str, Any] | None = None,
    *,
    language: str | None = None,
    reversed: bool = False,
) -> Constraint:
    """Build a constraint from an IFEval / Multi-IF instruction id and kwargs as the data spell
    them; None-valued kwargs are ignored, as lm-eval does."""
    if instruction_id not in SPECS:
        raise ValueError(
            f"unknown instruction id {instruction_id!r}; known ids: {', '.join(INSTRUCTION_IDS)}"
        )
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ValueError(f"{instruction_id}: kwargs must be a dict, got {type(kwargs).__name__}")
    clean = {k: v for k, v in (kwargs or {}).items() if v is not None}
    _validate(instruction_id, clean)
    return Constraint(instruction_id, clean, reversed, language)


def from_dict(row: dict[str, Any]) -> Constraint:
    """Inverse of `Constraint.to_dict`."""
    if not isinstance(row, dict) or "id" not in row:
        raise ValueError(f"a constraint must be a dict with an 'id' field, got {row!r}")
    return from_ifeval(
        row["id"],
        row.get("kwargs"),
        language=row.get("language"),
        reversed=bool(row.get("reversed", False)),
    )
