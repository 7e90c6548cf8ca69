"""Parity: rpo_bench's strict and loose verdicts equal lm-eval's IFEval `process_results`
on every (prompt, instruction) of the committed corpus (scripts/build_parity_corpus.py).

rpo_bench.constraints checks each instruction with lm-eval's own IFEval checker classes, so
what this tests is rpo_bench's wrapper on top of them: the blank-response rule (a blank
reply follows nothing), the loose variants (first/last line dropped, '*' removed), kwargs
handling (None-valued kwargs dropped, as lm-eval does) and letter frequency (the letter
asked for is counted; rows where lm-eval swaps a non-letter for a random one are skipped).
"""

import json

import pytest

from rpo_bench.evaluate.parity import compare

from conftest import REPO

CORPUS = REPO / "tests" / "fixtures" / "ifeval_parity_corpus.jsonl"


@pytest.fixture(scope="module")
def corpus():
    return [json.loads(line) for line in CORPUS.open()]


def test_corpus_is_large_and_varied(corpus):
    assert sum(r["source"] == "model" for r in corpus) >= 300
    assert {r["source"].split(":")[0] for r in corpus} == {"model", "variant", "edge"}
    for edge in ("empty", "whitespace", "markdown_fence", "json_fence", "trailing_spaces"):
        assert any(r["source"] == f"edge:{edge}" for r in corpus)


def test_strict_and_loose_verdicts_equal_lm_eval(corpus):
    result = compare(corpus)
    assert result["disagreements"] == []
    assert not result.get("prompt_strict_disagreements") and not result.get(
        "prompt_loose_disagreements"
    )
    # Both outcomes occur often enough for agreement to mean something.
    n = result["instructions"]
    assert n >= 1000 and 0.1 * n < result["strict_passed"] < 0.9 * n
