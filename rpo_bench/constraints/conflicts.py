"""Which verifiable constraints cannot both hold in one reply, and why.

`CONFLICTS` lists the id pairs that contradict whatever their kwargs; `conflict` adds the
ones that depend on kwargs (opposite bounds, a word asked for and forbidden, capitals
under lowercase, too few words for the sentences asked).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from rpo_bench.constraints.constraint import Constraint
from rpo_bench.constraints.specs import AT_LEAST, LESS_THAN, SPECS

# Id pairs that contradict whatever their kwargs, and why. Kwarg-dependent conflicts are
# in `conflict` below.
_LOWER, _CAPITAL = "change_case:english_lowercase", "change_case:english_capital"
_JSON = "detectable_format:json_format"
CONFLICTS: dict[frozenset[str], str] = {
    frozenset((_LOWER, _CAPITAL)): "all lowercase vs all capitals",
    frozenset((_CAPITAL, "change_case:capital_word_frequency")): (
        "in an all-capitals reply every word is a capital word"
    ),
    **{
        frozenset((_JSON, other)): "a JSON document has no room for it"
        for other in (
            "detectable_format:title",
            "detectable_format:number_bullet_lists",
            "detectable_format:number_highlighted_sections",
            "detectable_format:multiple_sections",
            "detectable_content:postscript",
            "startend:end_checker",
            "startend:quotation",
            "punctuation:no_comma",
        )
    },
}

_WORDS_PER_SENTENCE = 3  # fewer words than this per sentence is not a sentence a task wants


def _strings(c: Constraint) -> list[str]:
    """Every string a constraint asks the reply to contain or avoid."""
    out: list[str] = []
    for value in c.kwargs.values():
        out += value if isinstance(value, list) else [value] if isinstance(value, str) else []
    return [s for s in out if s not in (AT_LEAST, LESS_THAN)]


def _bound(c: Constraint, iid: str) -> tuple[str, int] | None:
    if c.instruction_id != iid:
        return None
    spec = SPECS[iid]
    count = next(k for k, kind in spec.kwargs.items() if kind is int)
    return c.kwargs[spec.relation], c.kwargs[count]


def conflict(a: Constraint, b: Constraint) -> str | None:
    """Why two constraints cannot both hold in one reply, or None when they can."""
    ids = frozenset((a.instruction_id, b.instruction_id))
    if ids in CONFLICTS:
        return CONFLICTS[ids]
    if a.instruction_id == b.instruction_id:
        spec = a.spec
        if spec.relation is None:
            return "the same instruction twice"
        (ra, na), (rb, nb) = _bound(a, a.instruction_id), _bound(b, b.instruction_id)
        if ra == rb:
            return "the same bound twice"
        low, high = (na, nb) if ra == AT_LEAST else (nb, na)
        return f"at least {low} and less than {high} leave nothing" if high <= low else None
    for x, y in ((a, b), (b, a)):
        if x.instruction_id == _LOWER:
            if any(s != s.lower() for s in _strings(y)):
                return "lowercase only, but it asks for capital letters"
            capitals = _bound(y, "change_case:capital_word_frequency")
            if capitals and capitals[0] == AT_LEAST:
                return "lowercase only, but it asks for capital words"
        words = _bound(x, "length_constraints:number_words")
        sentences = _bound(y, "length_constraints:number_sentences")
        if words and sentences and words[0] == LESS_THAN and sentences[0] == AT_LEAST:
            if words[1] <= _WORDS_PER_SENTENCE * sentences[1]:
                return f"less than {words[1]} words cannot make {sentences[1]} sentences"
    if {s.lower() for s in _strings(a)} & {s.lower() for s in _strings(b)}:
        return "the same word in two word constraints"
    return None


def conflicts(constraints: Sequence[Constraint]) -> list[tuple[int, int, str]]:
    """(i, j, why) for every contradictory pair of a turn's constraints."""
    return [
        (i, j, why)
        for (i, a), (j, b) in itertools.combinations(enumerate(constraints), 2)
        if (why := conflict(a, b))
    ]
