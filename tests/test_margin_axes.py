"""`pairs.min_margin` and `train.margin_mode` as grid axes: parsing, the cells and the plan,
stage keys (unchanged for a grid without the axes), and the report naming the values."""

import dataclasses
import json
from pathlib import Path

import pytest
from test_report_stats import synthetic

from rpo_bench.ablate import config as config_mod
from rpo_bench.ablate import report
from rpo_bench.ablate.__main__ import plan
from rpo_bench.ablate.runner import Runner
from rpo_bench.ablate.store import key_of

from conftest import REPO

AXES = """grid:
  strategy: [dpo_count, rpo]
  min_margin: [1, 3]
  margin_mode: [outside_beta, inside_beta]
"""


def load(tmp_path: Path, text: str) -> config_mod.AblationConfig:
    path = tmp_path / "axes.yaml"
    path.write_text("name: axes\n" + text)
    return config_mod.load(path)


def stage_keys(cfg: config_mod.AblationConfig, cell: config_mod.Cell, tmp_path: Path) -> dict:
    """Every stage key a cell's training depends on, without running a stage."""
    keys = {}
    runner = Runner(cfg, tmp_path)

    def stage(stage, label, inputs, work):
        keys[stage.kind] = key_of(stage.kind, inputs)
        return tmp_path / "none"

    runner._stage, runner.examples = stage, lambda folder: 1
    runner.train(cell)
    return keys


def test_the_axes_parse_and_expand_into_named_cells(tmp_path):
    cfg = load(tmp_path, AXES)
    assert (cfg.grid.min_margin, cfg.grid.margin_mode) == ((1, 3), ("outside_beta", "inside_beta"))
    cells = cfg.cells()
    assert len(cells) == 2 * 2 * 2
    assert cells[-1].name == "smollm2-135m/rpo/p0/s0/g3/inside_beta"
    last = {"model": "smollm2-135m", "strategy": "rpo", "noise": 0.0, "seed": 0}
    assert cells[-1].fields() == last | {"min_margin": 3, "margin_mode": "inside_beta"}
    text = plan(cfg)
    assert "8 cells" in text and "2 min margins x 2 margin modes" in text
    assert all(f"  cell {c.name}\n" in text + "\n" for c in cells)
    # only the rpo loss reads the mode, and a cell at the base's own mode adds nothing
    assert cfg.train_settings("dpo_count", "inside_beta") == {"loss": "dpo"}
    assert cfg.train_settings("rpo", "outside_beta") == {"loss": "rpo"}
    assert cfg.train_settings("rpo", "inside_beta") == {"loss": "rpo", "margin_mode": "inside_beta"}


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (
            "{min_margin: [0]}",
            r"axes\.yaml:2: field 'grid\.min_margin\[0\]' is 0, not a margin >= 1",
        ),
        (
            "{margin_mode: [middle]}",
            r"axes\.yaml:2: field 'grid\.margin_mode\[0\]' has the unknown value 'middle'; valid "
            r"values: outside_beta, inside_beta",
        ),  # fmt: skip
        ("{min_margin: [two]}", r"grid\.min_margin"),
    ],
)
def test_bad_axis_values_name_the_key(tmp_path, grid, message):
    with pytest.raises(ValueError, match=message):
        load(tmp_path, f"grid: {grid}\n")


def test_a_grid_without_the_axes_keeps_its_cells_and_stage_keys(tmp_path):
    # the cpu preset as it was when the axes came (tests/fixtures/cpu_v1.yaml)
    cfg = config_mod.load(REPO / "tests/fixtures/cpu_v1.yaml")
    dpo, rpo = cfg.cells()[0], cfg.cells()[8]
    assert (dpo.name, rpo.name) == ("smollm2-135m/dpo_count/p0/s0", "smollm2-135m/rpo/p0/s0")
    assert "min_margin" not in dpo.fields() and "margin_mode" not in dpo.fields()
    # keys computed by the code before the axes existed (commit 30ff099)
    assert stage_keys(cfg, dpo, tmp_path) == {
        "conversations": "3f8c12beee1f34d4", "samples": "df21d6dc645482e5",
        "judged": "644a9794ec1dfe61", "pairs": "175a673b1b7d4cc7", "train": "ffd9159d491cc67a",
    }  # fmt: skip
    old = stage_keys(cfg, rpo, tmp_path)
    assert (old["pairs"], old["train"]) == ("7c441c8181b7aef3", "41571600efce5e1c")
    # an axis value equal to the base's setting is that same cell: its stages are reused
    same = dataclasses.replace(rpo, min_margin=1, margin_mode="outside_beta")
    assert stage_keys(cfg, same, tmp_path) == old
    g3 = stage_keys(cfg, dataclasses.replace(rpo, min_margin=3), tmp_path)
    assert g3["judged"] == old["judged"] and g3["pairs"] != old["pairs"]
    inside = stage_keys(cfg, dataclasses.replace(rpo, margin_mode="inside_beta"), tmp_path)
    assert inside["pairs"] == old["pairs"] and inside["train"] != old["train"]


def test_the_report_names_the_axis_values(tmp_path):
    results = synthetic(shift={"rpo": 5.0})
    cells = []
    for mode in ("outside_beta", "inside_beta"):
        cells += [{**c, "margin_mode": mode} for c in results["cells"]]
    results["cells"] = cells
    results["config"]["grid"]["margin_mode"] = ["outside_beta", "inside_beta"]
    md = report.write(results, tmp_path).read_text()
    for mode in ("outside_beta", "inside_beta"):
        assert f"## heldout (smollm2-135m, margin_mode={mode})" in md
        assert f"p=0 (smollm2-135m, margin_mode={mode})" in md.split("\n\n")[1]  # the verdict
    assert "| seed | margin_mode | examples |" in md and "| 0 | inside_beta | 10 |" in md
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {c["margin_mode"] for c in saved["cells"]} == {"outside_beta", "inside_beta"}
    assert "smollm2-135m, margin_mode=inside_beta" in saved["summary"]
    assert not (tmp_path / "model_size.png").exists()


def test_the_training_budget_axis_and_the_gold_set_change_only_the_training_key(tmp_path):
    """`grid.epochs` and `gold` enter stage keys only where present: a store made before
    them keeps its keys (the pinned keys above are computed by today's code)."""
    cfg = config_mod.load(REPO / "tests/fixtures/cpu_v1.yaml")
    rpo = cfg.cells()[8]
    old = stage_keys(cfg, rpo, tmp_path)
    assert stage_keys(cfg, dataclasses.replace(rpo, epochs=1), tmp_path) == old  # train.epochs
    e3 = stage_keys(cfg, dataclasses.replace(rpo, epochs=3), tmp_path)
    assert e3["pairs"] == old["pairs"] and e3["train"] != old["train"]
    assert dataclasses.replace(rpo, epochs=3).name == "smollm2-135m/rpo/p0/s0/e3"
    assert cfg.train_settings("rpo", epochs=3) == {**cfg.train_settings("rpo"), "epochs": 3}
    gold = stage_keys(dataclasses.replace(cfg, gold=config_mod.Gold()), rpo, tmp_path)
    assert gold["pairs"] == old["pairs"] and gold["train"] != old["train"] and "gold" in gold
    with pytest.raises(ValueError, match=r"grid\.epochs\[0\]' is 0, not a number of epochs"):
        load(tmp_path, "grid: {epochs: [0]}\n")
    with pytest.raises(ValueError, match=r"gold\.n' is 1: a pair needs at least 2"):
        load(tmp_path, "gold: {n: 1}\n")


def test_a_dose_response_grid_trains_its_smaller_budgets_first(tmp_path):
    cfg = load(tmp_path, "grid:\n  strategy: [dpo_count, rpo]\n  epochs: [6, 1, 3]\n")
    order = [unit.name for kind, unit in Runner(cfg, tmp_path).tasks() if kind == "cell"]
    strategies = ("dpo_count", "rpo")
    assert order == [f"smollm2-135m/{s}/p0/s0/e{e}" for e in (1, 3, 6) for s in strategies]
