"""Parity: rpo_bench's strict and loose verdicts equal lm-eval's IFEval `process_results`
on every (prompt, instruction) of the committed corpus (scripts/build_parity_corpus.py)."""

import json

import pytest
from conftest import REPO
from lm_eval.tasks.ifeval.utils import process_results

from rpo_bench.evaluate.verifiable import constraints_for, score

CORPUS = REPO / "tests" / "fixtures" / "ifeval_parity_corpus.jsonl"


def lm_eval_is_random(row) -> bool:
    """lm-eval replaces a non-letter `letter` (IFEval asks for '#', '!') with a random letter."""
    return any(
        iid == "keywords:letter_frequency" and not kw["letter"].isalpha()
        for iid, kw in zip(row["instruction_id_list"], row["kwargs"], strict=True)
    )


@pytest.fixture(scope="module")
def corpus():
    return [json.loads(line) for line in CORPUS.open()]


def test_corpus_is_large_and_varied(corpus):
    assert len(corpus) >= 300
    sources = {r["source"].split(":")[0] for r in corpus}
    assert sources == {"model", "variant", "edge"}
    assert sum(r["source"] == "model" for r in corpus) >= 300
    for edge in ("empty", "whitespace", "markdown_fence", "json_fence", "trailing_spaces"):
        assert any(r["source"] == f"edge:{edge}" for r in corpus)


def test_strict_and_loose_verdicts_equal_lm_eval(corpus):
    compared, disagreements, passed = 0, [], {"strict": 0, "loose": 0}
    for row in corpus:
        if lm_eval_is_random(row):
            continue
        doc = {k: row[k] for k in ("key", "instruction_id_list", "prompt", "kwargs")}
        reference = process_results(doc, [row["response"]])
        ours = score(constraints_for(row["instruction_id_list"], row["kwargs"]), row["response"])
        for i, iid in enumerate(row["instruction_id_list"]):
            compared += 1
            for level in ("strict", "loose"):
                theirs = reference[f"inst_level_{level}_acc"][i]
                mine = ours[f"inst_level_{level}_acc"][i]
                passed[level] += mine
                if theirs != mine:
                    disagreements.append((row["key"], row["source"], iid, level, theirs, mine))
        for level in ("strict", "loose"):
            key = f"prompt_level_{level}_acc"
            assert reference[key] == ours[key] or disagreements
    assert not disagreements, disagreements[:10]
    # Both outcomes occur often enough for agreement to mean something.
    assert compared >= 500 and 0.1 * compared < passed["strict"] < 0.9 * compared
