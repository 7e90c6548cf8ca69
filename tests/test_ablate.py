"""The ablation runner: config validation, the presets' plans, the smoke preset end to end
with a kill during training and a resume that recomputes nothing already finished."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rpo_bench.ablate import config as config_mod
from rpo_bench.ablate.stats import paired_bootstrap, seed_interval
from rpo_bench.ablate.store import Store, key_of

from conftest import REPO

ABLATIONS = REPO / "ablations"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ngrid: {strategy: [rpo, magic]}\n", "grid.strategy[1]: unknown value 'magic'"),
        ("name: x\nsampling: {temprature: 1.0}\n", "sampling: unknown key 'temprature'"),
        ("name: x\nfoo: 1\n", "unknown key 'foo'"),
        ("name: x\ngrid: {noise: [0.7]}\n", "grid.noise[0]: 0.7 is not a flip probability"),
        ("name: x\neval: {tasks: [ifeval]}\n", "eval.tasks[0]: unknown value 'ifeval'"),
        ("name: x\ndata: {turns: two}\n", "data.turns: expected int"),
        ("name: x\ntrain: {beta2: 0.1}\n", "train:"),
        ("name: x\ngrid: {seed: []}\n", "grid.seed: needs at least one value"),
        ("name: x\nsampling: {backend: tgi}\n", "valid values: hf, vllm"),
    ],
)
def test_config_errors_name_the_key_and_the_valid_values(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        config_mod.load(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_unknown_strategy_lists_the_registry(tmp_path):
    registry = "valid values: rpo, rpo_one_way, drop_failed, dpo_count, dpo_perfect"
    with pytest.raises(ValueError, match=registry):
        config_mod.load(write(tmp_path, "name: x\ngrid: {strategy: [dpo]}\n"))


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper_llama8b", "model_size"])
def test_presets_validate_and_dry_run_prints_the_plan(preset):
    cfg = config_mod.load(ABLATIONS / f"{preset}.yaml")
    out = subprocess.run(
        [sys.executable, "-m", "rpo_bench.ablate", "--config", str(ABLATIONS / f"{preset}.yaml"),
         "--dry-run"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    assert f"{len(cfg.cells())} cells" in out.stdout
    assert all(c.name in out.stdout for c in cfg.cells())


def test_paper_preset_is_the_papers_setting():
    cfg = config_mod.load(ABLATIONS / "paper_llama8b.yaml")
    assert cfg.grid.model == ("meta-llama/Llama-3.1-8B-Instruct",)
    assert cfg.train["lora"] == {"r": 8, "alpha": 16, "target_modules": "all-linear"}
    assert (cfg.train["beta"], cfg.train["gamma"], cfg.train["lr"]) == (0.1, 0.05, 5e-4)
    assert cfg.train["epochs"] == 3 and "sysbench_multiturn" in cfg.eval.tasks


def test_store_runs_a_stage_once_and_keys_on_inputs(tmp_path):
    store, calls = Store(tmp_path), []

    def work(folder):
        calls.append(folder.name)
        (folder / "out.txt").write_text("x")

    a = store.run("stage", {"p": 1}, work)
    assert store.run("stage", {"p": 1}, work) == a and len(calls) == 1
    assert store.run("stage", {"p": 2}, work) != a and len(calls) == 2
    assert key_of("stage", {"p": 1, "q": 2}) == key_of("stage", {"q": 2, "p": 1})
    assert not list(tmp_path.glob("*/*.partial"))


def test_a_failed_stage_leaves_no_finished_folder(tmp_path):
    store = Store(tmp_path)

    def boom(folder):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.run("stage", {"p": 1}, boom)
    assert not store.done("stage", {"p": 1})


def test_intervals():
    mean, half = seed_interval([0.2, 0.4])
    assert mean == pytest.approx(0.3) and half == pytest.approx(12.706 * 0.1, rel=1e-3)
    assert seed_interval([0.5]) == (0.5, None)
    delta, lo, hi = paired_bootstrap([1, 1, 1, 0], [0, 0, 0, 0], n_boot=500)
    assert delta == 0.75 and 0 <= lo <= 0.75 <= hi <= 1


@pytest.mark.slow
def test_smoke_preset_end_to_end_with_kill_and_resume(tmp_path):
    """Kill the run while it trains, rerun with --resume: it completes, and no stage that
    had finished before the kill is computed again."""
    work, out = tmp_path / "work", tmp_path / "report"
    cmd = [sys.executable, "-m", "rpo_bench.ablate", "--config", str(ABLATIONS / "smoke.yaml"),
           "--work", str(work), "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 480
    while time.time() < deadline and not list(work.glob("train/*.partial/checkpoints")):
        assert proc.poll() is None, "the run ended before any training started"
        time.sleep(0.5)
    assert list(work.glob("train/*.partial")), "no training stage was reached"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {f"{p.parent.name}/{p.name}" for p in work.glob("*/*") if p.is_dir()}
    finished = {f for f in finished if not f.endswith(".partial")}
    assert any(f.startswith("samples/") for f in finished)

    subprocess.run([*cmd, "--resume"], cwd=REPO, env=env, check=True, capture_output=True)
    results = json.loads((out / "results.json").read_text())
    computed = set(results["provenance"]["computed_this_run"])
    assert not computed & finished, computed & finished
    assert any(c.startswith("train/") for c in computed)
    assert len(results["cells"]) == 4 and set(results["base"]) == {"smollm2-135m"}
    report = (out / "report.md").read_text()
    for task in ("ifeval_local", "ifbench", "heldout"):
        assert f"## {task} (smollm2-135m)" in report
    for png in ("strategies_smollm2-135m.png", "noise_smollm2-135m.png", "margins.png",
                "training.png"):  # fmt: skip
        assert (out / png).stat().st_size > 1000 and f"]({png})" in report
    for cell in results["cells"]:
        assert cell["pairs"]["pairs"] >= 0
        for task in ("ifeval_local", "ifbench", "heldout"):
            assert 0 <= cell["eval"][task]["metrics"]["overall"] <= 1
    assert results["config"]["name"] == "smoke" and results["provenance"]["git_commit"]
