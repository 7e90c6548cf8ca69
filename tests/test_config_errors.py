"""Config errors name the file, the line and the key path once (``<file>:<line>: field
'a.b[2]' <problem>``), and a number YAML reads as a string (5e-4) comes with its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rpo_bench import cli
from rpo_bench.ablate import config as config_mod
from rpo_bench.train.config import TrainConfig
from rpo_bench.typedconfig import number_fix

from conftest import REPO

LR_MESSAGE = (
    "field '{field}' expected a number, got the string '5e-4' "
    "(YAML reads 5e-4 as a string: write 5.0e-4)"
)


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of `path` that holds `text`."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_5e_4_in_an_ablation_config_exits_2_with_line_path_and_fix(tmp_path):
    config = tmp_path / "smoke.yaml"
    text = (REPO / "ablations" / "smoke.yaml").read_text()
    config.write_text(text.replace("lr: 5.0e-4", "lr: 5e-4"))
    out = subprocess.run(
        [sys.executable, "-m", "rpo_bench.ablate", "--config", str(config),
         "--work", str(tmp_path / "work"), "--dry-run"],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    line = line_of(config, "lr: 5e-4")
    assert line > 1 and out.returncode == 2, out.stderr
    expected = f"{config}:{line}: " + LR_MESSAGE.format(field="train.lr")
    assert out.stderr == f"rpo_bench.ablate: error: {expected}\n"  # the path once, no traceback
    assert not (tmp_path / "work").exists()


def test_5e_4_in_a_train_config_exits_2_with_line_and_fix(tmp_path, capsys):
    config = tmp_path / "rpo.yaml"
    text = (REPO / "configs" / "train" / "rpo_lora.yaml").read_text()
    config.write_text(text.replace("\nlr: 5.0e-4", "\nlr: 5e-4"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--pairs", str(tmp_path / "pairs.jsonl"), "--config", str(config),
                  "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err
    expected = f"{config}:{line_of(config, 'lr: 5e-4')}: " + LR_MESSAGE.format(field="lr")
    assert exit_.value.code == 2 and err == f"rpo-bench: error: {expected}\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # an unknown key in a block mapping: the key's own line
        ("name: x\nsampling:\n  n: 2\n  temprature: 1.0\n",
         ":4: field 'sampling.temprature' is an unknown key; valid keys: n, temperature"),
        # a wrong type two sections deep
        ("name: x\nsampling:\n  history: teacher\n  teacher:\n    model: m\n    n: four\n",
         ":6: field 'sampling.teacher.n' expected int, got 'four'"),
        # a bad value found by validation, in a block list: the item's line
        ("name: x\ngrid:\n  strategy:\n    - rpo\n    - magic\n",
         ":5: field 'grid.strategy[1]' has the unknown value 'magic'"),
        # a trainer setting inside `train`, checked by TrainConfig
        ("name: x\ntrain:\n  beta: 0.1\n  gamma: -1\n",
         ":4: field 'train.gamma' must be >= 0, got -1.0"),
        # a key the file leaves out: the line of its section
        ("name: x\ndescription: d\nsampling:\n  history: teacher\n",
         ":3: field 'sampling.teacher' must be set exactly when history is teacher"),
        # quoted, a number is a string too
        ("name: x\ngrid:\n  noise: ['0.2']\n",
         ":3: field 'grid.noise[0]' expected a number, got the string '0.2' "
         "(write it without quotes)"),
    ],
)  # fmt: skip
def test_ablation_config_errors_name_the_line(tmp_path, text, message):
    path = tmp_path / "a.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        config_mod.load(path)
    assert str(err.value).startswith(f"{path}{message}"), str(err.value)


def test_train_config_errors_name_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("loss: rpo\nlora:\n  r: 8\n  rank: 8\n")
    with pytest.raises(ValueError, match=rf"^{path}:4: field 'lora\.rank' is an unknown key"):
        TrainConfig.from_yaml(path)
    path.write_text("loss: kto\nbatch_size: 1\n")
    with pytest.raises(ValueError, match=rf"^{path}:2: field 'batch_size' must be >= 2 for loss"):
        TrainConfig.from_yaml(path)
    with pytest.raises(ValueError, match=r"^command line: field 'lr' expected a number"):
        TrainConfig.from_dict({"lr": "1e-3"}, "command line")


@pytest.mark.parametrize(
    ("text", "integer", "written"),
    [
        ("5e-4", False, "5.0e-4"),
        ("1E-5", False, "1.0E-5"),
        ("1e3", False, "1.0e+3"),  # YAML 1.1 reads 1.0e3 as a string too: the sign is needed
        ("-2.5e3", False, "-2.5e+3"),
        ("1e3", True, "1000"),
    ],
)
def test_number_fix_writes_what_yaml_reads_as_the_number(text, integer, written):
    assert yaml.safe_load(text) == text  # the string YAML gave the config
    assert number_fix(text, integer) == f"YAML reads {text} as a string: write {written}"
    assert yaml.safe_load(written) == float(text)


@pytest.mark.parametrize(("text", "integer"), [("abc", False), ("1e-3", True), ("1.5", True)])
def test_no_number_fix_for_what_is_no_such_number(text, integer):
    assert number_fix(text, integer) is None
