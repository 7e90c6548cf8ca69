"""Property tests: every reversible constraint's reversal is its exact complement.

For every reversible id, kwargs and responses are generated on both sides of each
threshold (N-2 .. N+2 counted items) and from a soup of the features the checkers
look at (commas, quotes, markers, keywords, CJK and Hindi text, JSON, blanks).
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lm_eval.tasks.ifeval.instructions_util import LANGUAGE_CODES

from rpo_bench.constraints import INSTRUCTION_IDS, NON_REVERSIBLE, from_ifeval

REVERSIBLE = [i for i in INSTRUCTION_IDS if i not in NON_REVERSIBLE]
MULTILINGUAL = {
    "length_constraints:number_words",
    "length_constraints:number_sentences",
    "startend:quotation",
}
REL = st.sampled_from(["less than", "at least"])
COUNT = st.integers(0, 6)
WORDS = st.sampled_from(["cat", "dog", "sun"])

KWARGS = {
    "change_case:capital_word_frequency": st.fixed_dictionaries(
        {"capital_frequency": COUNT, "capital_relation": REL}
    ),
    "change_case:english_capital": st.just({}),
    "change_case:english_lowercase": st.just({}),
    "combination:repeat_prompt": st.fixed_dictionaries(
        {"prompt_to_repeat": st.sampled_from(["Write a poem.", "Say hi"])}
    ),
    "detectable_content:number_placeholders": st.fixed_dictionaries({"num_placeholders": COUNT}),
    "detectable_content:postscript": st.fixed_dictionaries(
        {"postscript_marker": st.sampled_from(["P.S.", "P.P.S"])}
    ),
    "detectable_format:constrained_response": st.just({}),
    "detectable_format:json_format": st.just({}),
    "detectable_format:multiple_sections": st.fixed_dictionaries(
        {"section_spliter": st.sampled_from(["SECTION", "Day"]), "num_sections": COUNT}
    ),
    "detectable_format:number_highlighted_sections": st.fixed_dictionaries(
        {"num_highlights": COUNT}
    ),
    "detectable_format:title": st.just({}),
    "keywords:existence": st.fixed_dictionaries(
        {"keywords": st.lists(WORDS, min_size=1, max_size=3, unique=True)}
    ),
    "keywords:forbidden_words": st.fixed_dictionaries(
        {"forbidden_words": st.lists(WORDS, min_size=1, max_size=3, unique=True)}
    ),
    "keywords:frequency": st.fixed_dictionaries(
        {"keyword": WORDS, "frequency": COUNT, "relation": REL}
    ),
    "keywords:letter_frequency": st.fixed_dictionaries(
        {
            "letter": st.sampled_from(["a", "Q", "#"]),
            "let_frequency": st.integers(0, 8),
            "let_relation": REL,
        }
    ),
    "language:response_language": st.fixed_dictionaries(
        {"language": st.sampled_from(sorted(LANGUAGE_CODES)[:6] + ["en"])}
    ),
    "length_constraints:number_sentences": st.fixed_dictionaries(
        {"num_sentences": COUNT, "relation": REL}
    ),
    "length_constraints:number_words": st.fixed_dictionaries(
        {"num_words": st.integers(0, 10), "relation": REL}
    ),
    "punctuation:no_comma": st.just({}),
    "startend:end_checker": st.fixed_dictionaries(
        {"end_phrase": st.sampled_from(["Thank you.", "Any questions?"])}
    ),
    "startend:quotation": st.just({}),
}

# One counted item per threshold id: k copies land on either side of N.
ITEM = {
    "change_case:capital_word_frequency": "WORD",
    "detectable_content:number_placeholders": "[name]",
    "detectable_format:multiple_sections": "{section_spliter} 1\ntext",
    "detectable_format:number_highlighted_sections": "*key point*",
    "keywords:frequency": "{keyword}",
    "keywords:letter_frequency": "{letter}",
    "length_constraints:number_sentences": "It rains.",
    "length_constraints:number_words": "word",
}
THRESHOLD = {
    "change_case:capital_word_frequency": "capital_frequency",
    "detectable_content:number_placeholders": "num_placeholders",
    "detectable_format:multiple_sections": "num_sections",
    "detectable_format:number_highlighted_sections": "num_highlights",
    "keywords:frequency": "frequency",
    "keywords:letter_frequency": "let_frequency",
    "length_constraints:number_sentences": "num_sentences",
    "length_constraints:number_words": "num_words",
}

FEATURES = [
    "cat",
    "dog",
    "sun",
    "Cat",
    "DOG",
    "word",
    "a",
    "q",
    "#",
    "[x]",
    "*hi*",
    "**bold**",
    "SECTION 1",
    "SECTION 2",
    "Day 3",
    "P.S. note",
    "P.P.S more",
    ",",
    ".",
    "!",
    "?",
    '"',
    "“",
    "”",
    "「",
    "」",
    "<<Title>>",
    "My answer is yes.",
    "Thank you.",
    "Any questions?",
    "Write a poem.",
    "今天天气很好",
    "。",
    "！",
    "यह वाक्य है",
    "।",
    "Bonjour tout le monde.",
    "HELLO THERE",
    "hello there",
    '{"a": 1}',
    "```",
    "\n",
    "\n\n",
    "***",
    "   ",
    "Dr.",
    "Mr. X",
]
SOUP = st.lists(st.sampled_from(FEATURES), max_size=25).flatmap(
    lambda parts: st.sampled_from([" ", "", "\n"]).map(lambda sep: sep.join(parts))
)


@st.composite
def case(draw, iid):
    kwargs = draw(KWARGS[iid])
    language = draw(st.sampled_from([None, "auto", "zh", "hi"])) if iid in MULTILINGUAL else None
    text = draw(st.one_of(SOUP, st.text(max_size=40)))
    if iid in ITEM:
        n = kwargs[THRESHOLD[iid]]
        k = draw(st.integers(max(0, n - 2), n + 2))
        sep = draw(st.sampled_from([" ", "\n", "\n\n"]))
        counted = sep.join([ITEM[iid].format(**kwargs)] * k)
        text = draw(st.sampled_from([counted, counted + " " + text, text]))
    if iid == "combination:repeat_prompt" and draw(st.booleans()):
        text = kwargs["prompt_to_repeat"] + " " + text
    if iid == "startend:end_checker" and draw(st.booleans()):
        text = text + " " + kwargs["end_phrase"]
    return from_ifeval(iid, kwargs, language=language), text


@pytest.mark.parametrize("iid", REVERSIBLE)
def test_reversal_is_exact_complement(iid):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case(iid))
    def prop(pair):
        c, response = pair
        r = c.reverse()
        assert c.check(response) != r.check(response), (c.describe(), r.describe(), response)
        rr = r.reverse()
        assert rr == c
        assert rr.check(response) == c.check(response)

    prop()


@pytest.mark.parametrize("iid", sorted(NON_REVERSIBLE))
def test_non_reversible_ids_return_none(iid):
    kwargs = {
        "combination:two_responses": {},
        "detectable_format:number_bullet_lists": {"num_bullets": 3},
        "length_constraints:number_paragraphs": {"num_paragraphs": 3},
        "length_constraints:nth_paragraph_first_word": {
            "num_paragraphs": 3,
            "nth_paragraph": 2,
            "first_word": "so",
        },
    }[iid]
    assert from_ifeval(iid, kwargs).reverse() is None


@pytest.mark.parametrize("iid", sorted(THRESHOLD))
def test_threshold_off_by_one(iid):
    """At exactly N items "at least N" passes; at N-1 its reversal ("at most N-1") passes."""
    kwargs = {THRESHOLD[iid]: 3}
    base = {
        "change_case:capital_word_frequency": {"capital_relation": "at least"},
        "detectable_format:multiple_sections": {"section_spliter": "SECTION"},
        "keywords:frequency": {"keyword": "cat", "relation": "at least"},
        "keywords:letter_frequency": {"letter": "q", "let_relation": "at least"},
        "length_constraints:number_sentences": {"relation": "at least"},
        "length_constraints:number_words": {"relation": "at least"},
    }.get(iid, {})
    c = from_ifeval(iid, base | kwargs)
    item = ITEM[iid].format(**(base | kwargs))
    exactly_n, one_less = "\n\n".join([item] * 3), "\n\n".join([item] * 2)
    assert c.check(exactly_n) and not c.reverse().check(exactly_n)
    assert not c.check(one_less) and c.reverse().check(one_less)
