"""An input file without rows (empty, or only blank lines) given to `samples`, `pairs` or
`train`: exit 2 with one line naming the file, no traceback, nothing written and no model
loaded; `--allow-empty` (samples, pairs) writes the empty output with a warning instead.
Training on nothing makes no model, so `train` has no such flag. Rows that yield no pair are
not an empty input: exit 0, with a warning that says why."""

from __future__ import annotations

import json

import pytest

from rpo_bench import cli
from rpo_bench.pairs import run

# (command with {input} and {out}, input file name, what the input has none of)
COMMANDS = {
    "pairs": (["pairs", "--samples", "{input}", "--strategy", "rpo", "--out", "{out}"],
              "samples.jsonl", "samples"),
    "samples": (["samples", "--conversations", "{input}", "--model", "no-such/model",
                 "--out", "{out}"], "conversations.jsonl", "conversations"),
    "train": (["train", "--pairs", "{input}", "--model", "no-such/model", "--out", "{out}"],
              "pairs.jsonl", "training examples"),
}  # fmt: skip
EMPTY = {"empty": ("", "the file is empty"), "blank lines": ("\n  \n\n", "holds only blank lines")}
ROW = {"id": "t0", "history": [], "task": "Describe the sea.", "constraint_slot": "user",
       "constraints": [{"id": "punctuation:no_comma", "kwargs": {}}]}  # fmt: skip


@pytest.fixture(autouse=True)
def no_model(monkeypatch):
    """Loading a model fails the test: an empty input must stop before it."""
    from rpo_bench.rollout import hf

    def load(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(hf, "HFBackend", load)


def _main(command: str, tmp_path, text: str, *extra: str):
    args, name, _ = COMMANDS[command]
    path, out = tmp_path / name, tmp_path / "out" / "written.jsonl"
    path.write_text(text)
    argv = [a.replace("{input}", str(path)).replace("{out}", str(out)) for a in args]
    cli.main([*argv, *extra])
    return path, out


@pytest.mark.parametrize("empty", EMPTY)
@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_input_exits_2_naming_the_file(tmp_path, capsys, command, empty):
    text, why = EMPTY[empty]
    with pytest.raises(SystemExit) as exit_:
        _main(command, tmp_path, text)
    err = capsys.readouterr().err
    path = tmp_path / COMMANDS[command][1]
    assert exit_.value.code == 2, err
    assert err.startswith(f"rpo-bench: error: {path}: no {COMMANDS[command][2]} (") and why in err
    assert "--allow-empty" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["pairs", "samples"])
def test_allow_empty_writes_an_empty_output_with_a_warning(tmp_path, capsys, command):
    path, out = _main(command, tmp_path, "", "--allow-empty")  # no SystemExit: exit 0
    err = capsys.readouterr().err
    assert out.read_text() == ""
    assert err.startswith(f"rpo-bench: warning: {path}: no {COMMANDS[command][2]} (the file is")
    assert str(out) in err and "Traceback" not in err


def test_train_has_no_allow_empty(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _main("train", tmp_path, "", "--allow-empty")
    assert exit_.value.code == 2
    assert "unrecognized arguments: --allow-empty" in capsys.readouterr().err


def test_train_says_why_it_takes_no_empty_input(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _main("train", tmp_path, "")
    assert "training needs at least one, so train has no --allow-empty" in capsys.readouterr().err


def test_train_in_processes_refuses_an_empty_file_before_launching_them(
    tmp_path, capsys, monkeypatch
):
    from rpo_bench.train import launch

    def started(*args, **kwargs):
        raise AssertionError("processes were started")

    monkeypatch.setattr(launch.subprocess, "run", started)
    with pytest.raises(SystemExit) as exit_:
        _main("train", tmp_path, "\n", "--processes", "2")
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "no training examples" in err and "Traceback" not in err


def _samples(tmp_path, verdicts, **extra):
    path = tmp_path / "samples.jsonl"
    responses = [{"text": f"reply {k}", "verdicts": v} for k, v in enumerate(verdicts)]
    path.write_text(json.dumps({**ROW, "responses": responses, **extra}) + "\n")
    return path


@pytest.mark.parametrize(
    ("verdicts", "extra", "margin", "why"),
    [
        ([[True], [True]], {}, 1, "in each turn (1 in all) all responses have the same verdicts"),
        ([[True], None], {"unjudged": [1]}, 1, "each turn (1 in all) has a response the judge"),
        ([[True], [False]], {}, 2, "strategy 'rpo' found none in its 1 turn with min_margin=2"),
    ],
    ids=["tie", "unjudged", "min margin"],
)
def test_rows_that_yield_no_pair_exit_0_with_a_warning_saying_why(
    tmp_path, capsys, verdicts, extra, margin, why
):
    path, out = _samples(tmp_path, verdicts, **extra), tmp_path / "pairs.jsonl"
    cli.main(["pairs", "--samples", str(path), "--strategy", "rpo", "--out", str(out),
              "--min-margin", str(margin)])  # fmt: skip
    err = capsys.readouterr().err
    assert out.read_text() == "" and len(err.splitlines()) == 1
    assert err.startswith(f"rpo-bench: warning: {path}: 0 pairs built, so {out} is empty: {why}")


def test_rows_that_yield_pairs_warn_nothing(tmp_path, capsys):
    path, out = _samples(tmp_path, [[True], [False]]), tmp_path / "pairs.jsonl"
    cli.main(["pairs", "--samples", str(path), "--strategy", "rpo", "--out", str(out)])
    assert capsys.readouterr().err == "" and out.read_text()


def test_the_library_keeps_an_empty_input_for_the_ablation_runner(tmp_path, capsys):
    """`pairs.run` (the runner's pairs stage) writes an empty set, silently, by default: the
    runner skips training on it. allow_empty=False is the command's check."""
    empty = tmp_path / "samples.jsonl"
    empty.write_text("")
    stats = run(empty, "rpo", tmp_path / "pairs.jsonl")
    assert stats["examples"] == 0 and (tmp_path / "pairs.jsonl").read_text() == ""
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="samples.jsonl: no samples"):
        run(empty, "rpo", tmp_path / "other.jsonl", allow_empty=False)
    assert not (tmp_path / "other.jsonl").exists()
