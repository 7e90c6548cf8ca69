"""Every command that reads a user file, given a spoiled one (a truncated JSON line, bytes
that are not UTF-8, a wrongly typed config value): exit code 2, one line naming the file
and line (or key), no traceback, and no output file written. `test_readers_fuzz` checks
the readers themselves on many more spoilings; this checks what a user sees."""

from __future__ import annotations

import json

import pytest

from rpo_bench import cli

GOOD_PAIR = {"id": "p0", "prompt": [{"role": "user", "content": "Say hi."}], "chosen": "hi",
             "rejected": "no", "margin": 1}  # fmt: skip

# (command with {bad} for the spoiled file and {out} for what it would write, file name)
COMMANDS = {
    "pairs": (["pairs", "--samples", "{bad}", "--strategy", "rpo", "--out", "{out}"],
              "samples.jsonl"),
    "train": (["train", "--pairs", "{bad}", "--out", "{out}"], "pairs.jsonl"),
    "samples": (["samples", "--conversations", "{bad}", "--out", "{out}"],
                "conversations.jsonl"),
    "multi-if-score": (["multi-if-score", "--input", "{bad}"], "multi_if.jsonl"),
    "sysbench-score": (["sysbench-score", "--labels", "{bad}"], "labels.jsonl"),
}  # fmt: skip
SPOILED = {
    "truncated line": (b'{"id": "x", "prompt"\n', ":1: not valid JSON"),
    "not UTF-8": (b'{"id": "\xff"}\n', ":1: not UTF-8 (byte 0xff"),
}


@pytest.mark.parametrize("spoiled", SPOILED)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_spoiled_input_file_exits_2_naming_file_and_line(tmp_path, capsys, command, spoiled):
    args, name = COMMANDS[command]
    data, message = SPOILED[spoiled]
    bad, out = tmp_path / name, tmp_path / "out" / "written.jsonl"
    bad.write_bytes(data)
    argv = [a.replace("{bad}", str(bad)).replace("{out}", str(out)) for a in args]
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert f"{bad}{message}" in err and "Traceback" not in err
    assert not out.exists() and not out.parent.exists()


def test_train_rejects_bad_pairs_before_loading_a_model(tmp_path, capsys):
    """A bad line 2 of pairs: the error comes before any model is loaded (a hub id that
    does not exist would fail otherwise)."""
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps(GOOD_PAIR) + "\n" + json.dumps({**GOOD_PAIR, "margin": "x"}) + "\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--pairs", str(bad), "--model", "no-such/model", "--out",
                  str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{bad}:2" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_wrongly_typed_train_config_exits_2_naming_the_key(tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps(GOOD_PAIR) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text("lora: {rank: 8}\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--pairs", str(pairs), "--config", str(config), "--out",
                  str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{config}:1: field 'lora.rank' is an unknown key" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_a_spoiled_ablation_config_exits_2(tmp_path, capsys):
    from rpo_bench.ablate.__main__ import main

    config = tmp_path / "a.yaml"
    config.write_bytes(b"name: a\ndata: {turns: \xff}\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(config), "--work", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"{config}:2: not UTF-8" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()
