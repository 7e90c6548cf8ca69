"""Our Multi-IF scorer gives what Multi-IF's official scorer gives, rule by rule.

Every expected value in tests/fixtures/multi_if_official.json was computed by RUNNING
the official code (facebookresearch/Multi-IF at commit 1cdb53e) with
benchmarks/multi_if_official_cases.py, which imports it from a checkout and records
its answers (the fixture names the library versions used):

- checks: `metrics.gen_acc_strict` / `metrics.gen_acc_loose`, per instruction;
- counts: the word / sentence count `ifeval.NumberOfWords` / `ifeval.NumberOfSentences`
  compare (language detected, as in scoring);
- forced: `ifeval.count_words_chinese_japanese`, `split_chinese_japanese`,
  `count_hindi_num_sentences`, PyThaiNLP's `word_tokenize` / `sent_tokenize` (per line),
  `count_words`, `count_sentences`, each called directly;
- turns: `metrics.MultiTurnInstructionFollowingPromptSolution.metrics_gen`, per turn
  (overall score by language and pooled, and each row's verdicts).

Thai follows PyThaiNLP, an optional dependency here: its cases skip without it.
"""

import importlib.util
import json

import pytest

from rpo_bench.constraints.multilingual import count_sentences, count_words
from rpo_bench.evaluate import multi_if
from rpo_bench.evaluate.verifiable import constraints_for, score

from conftest import REPO

OFFICIAL = json.loads((REPO / "tests" / "fixtures" / "multi_if_official.json").read_text())
THAI = importlib.util.find_spec("pythainlp") is not None
needs_thai = pytest.mark.skipif(not THAI, reason="Multi-IF counts Thai with pythainlp")


def _thai_marks(is_thai: bool) -> list:
    return [needs_thai] if is_thai else []


def _params(items, name, is_thai):
    return [pytest.param(c, id=name(c), marks=_thai_marks(is_thai(c))) for c in items]


@pytest.mark.parametrize(
    "case", _params(OFFICIAL["checks"], lambda c: c["name"], lambda c: c["name"][:3] == "th_")
)
def test_checks_equal_the_official_verdicts(case):
    ids = [i for i, _ in case["instructions"]]
    kwargs = [kw for _, kw in case["instructions"]]
    got = score(constraints_for(ids, kwargs, "auto"), case["response"])
    assert got["inst_level_strict_acc"] == case["strict"]
    assert got["inst_level_loose_acc"] == case["loose"]


@pytest.mark.parametrize(
    "case", _params(OFFICIAL["counts"], lambda c: c["name"], lambda c: c["name"] == "th")
)
def test_counts_equal_the_official_counts(case):
    assert count_words(case["text"], "auto") == case["words"]
    assert count_sentences(case["text"], "auto") == case["sentences"]


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=f"text{i}") for i, c in enumerate(OFFICIAL["forced"])]
)
def test_forced_language_counts_equal_the_official_helpers(case):
    text = case["text"]
    assert count_words(text, "zh") == case["zh_words"]
    assert count_sentences(text, "zh") == case["zh_sentences"]
    assert count_sentences(text, "hi") == case["hi_sentences"]
    assert count_words(text, "en") == case["en_words"]
    assert count_sentences(text, "en") == case["en_sentences"]
    if THAI:
        assert count_words(text, "th") == case["th_words"]
        assert count_sentences(text, "th") == case["th_sentences"]


def test_turn_scores_equal_the_official_metrics():
    scored = multi_if.score_rows(OFFICIAL["conversations"], resamples=1)
    for k, official in OFFICIAL["turns"].items():
        table = scored["turns"][k]
        # Both name the pooled score "all_languages"; the official has no unweighted average.
        got = {lang: v["overall"] for lang, v in table.items() if lang != multi_if.AVERAGE}
        assert got == pytest.approx(official["overall"], abs=1e-12)
        rows = {
            row["key"]: {"strict": t["strict"], "loose": t["loose"]}
            for row in scored["rows"]
            for t in row["turns"]
            if t["turn"] == int(k)
        }
        assert rows == official["rows"]  # skipped turns are left out on both sides


def test_official_cases_cover_every_rule():
    used = {i for c in OFFICIAL["checks"] for i, _ in c["instructions"]}
    assert used == set(multi_if.data.INSTRUCTION_IDS)
