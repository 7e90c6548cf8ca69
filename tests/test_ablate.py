"""The ablation runner: config validation, the presets' plans, the smoke preset end to end
with a kill during training and a resume that recomputes nothing already finished."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rescore

from rpo_bench.ablate import config as config_mod
from rpo_bench.ablate.stats import paired_bootstrap, seed_interval
from rpo_bench.ablate.store import Store, key_of
from rpo_bench.data.conversations import read_conversations
from rpo_bench.evaluate.verifiable import score
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import resource

from conftest import REPO

ABLATIONS = REPO / "ablations"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ngrid: {strategy: [rpo, magic]}\n",
         ":2: field 'grid.strategy[1]' has the unknown value 'magic'"),
        ("name: x\nsampling: {temprature: 1.0}\n",
         ":2: field 'sampling.temprature' is an unknown key"),
        ("name: x\nfoo: 1\n", ":2: field 'foo' is an unknown key"),
        ("name: x\ngrid: {noise: [0.7]}\n",
         ":2: field 'grid.noise[0]' is 0.7, not a flip probability"),
        ("name: x\neval: {tasks: [ifeval]}\n",
         ":2: field 'eval.tasks[0]' has the unknown value 'ifeval'"),
        ("name: x\ndata: {turns: two}\n", ":2: field 'data.turns' expected int"),
        ("name: x\ntrain: {beta2: 0.1}\n", ":2: field 'train.beta2' is an unknown key"),
        ("name: x\ngrid: {seed: []}\n", ":2: field 'grid.seed' needs at least one value"),
        ("name: x\nsampling: {backend: tgi}\n",
         ":2: field 'sampling.backend' has the unknown value 'tgi'; valid values: hf, vllm"),
        ("name: x\ntrain: {processes: 0}\n",
         ":2: field 'train.processes' is 0, not a number of processes"),
        ("name: x\ngrid: {base_only: [smollm2-135m]}\n",
         ":2: field 'grid.base_only[0]' smollm2-135m is trained in the grid already"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key_and_the_valid_values(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        config_mod.load(path)
    assert f"{path}{message}" in str(err.value)  # the file, its line, the key path once


def test_base_only_models_are_evaluated_untrained_and_nothing_else(tmp_path):
    from rpo_bench.ablate.runner import Runner

    path = write(tmp_path, "name: x\ngrid: {base_only: [qwen2.5-coder-0.5b]}\n")
    cfg = config_mod.load(path)
    assert cfg.base_models() == ("smollm2-135m", "qwen2.5-coder-0.5b")
    tasks = Runner(cfg, tmp_path / "work").tasks()
    assert [t for t in tasks if t[0] == "base"] == [("base", m) for m in cfg.base_models()]
    assert {t[1].model for t in tasks if t[0] == "cell"} == {"smollm2-135m"}


def test_unknown_strategy_lists_the_registry(tmp_path):
    registry = "valid values: rpo, rpo_one_way, drop_failed, dpo_count, dpo_perfect"
    with pytest.raises(ValueError, match=registry):
        config_mod.load(write(tmp_path, "name: x\ngrid: {strategy: [dpo]}\n"))


@pytest.mark.parametrize("preset", sorted(p.stem for p in ABLATIONS.glob("*.yaml")))
def test_presets_validate_and_dry_run_checks_what_a_run_checks(preset, tmp_path):
    """On this machine (no API key, no hub) a preset that needs either, or a ladder model
    whose wheels are not installed, stops with exit 2 and names each missing thing; the
    others pass every check."""
    from rpo_bench.models import unavailable

    cfg = config_mod.load(ABLATIONS / f"{preset}.yaml")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    out = subprocess.run(
        [sys.executable, "-m", "rpo_bench.ablate", "--config", str(ABLATIONS / f"{preset}.yaml"),
         "--work", str(tmp_path / "work"), "--dry-run"],
        capture_output=True, text=True, cwd=REPO, env={**env, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert f"{len(cfg.cells())} cells" in out.stdout
    assert all(c.name in out.stdout for c in cfg.cells())
    assert f"report: runs/reports/{cfg.name}" in out.stdout  # never reports/ by default
    missing = {m: why for m in cfg.base_models() if (why := unavailable(m, lambda: False))}
    roles = [name for name, section in (("judge", cfg.judge.kind == "openai" or None),
             ("sampling.teacher", cfg.sampling.teacher), ("pairs.reverser", cfg.pairs.reverser))
             if section]  # fmt: skip
    if not missing and not roles:
        assert out.returncode == 0, out.stderr[-2000:]
        assert "dry run: every check a run makes before its first stage passed" in out.stdout
        return
    assert out.returncode == 2 and "this run cannot start" in out.stderr
    for model, why in missing.items():
        assert f"model {model!r}: {why}" in out.stderr
    for role in roles:
        assert f"config.{role} (" in out.stderr and "$OPENAI_API_KEY is not set" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "work").exists()


def test_paper_preset_is_the_papers_setting():
    cfg = config_mod.load(ABLATIONS / "paper_llama8b.yaml")
    assert cfg.grid.model == ("meta-llama/Llama-3.1-8B-Instruct",)
    assert cfg.train["lora"] == {"r": 8, "alpha": 16, "target_modules": "all-linear"}
    assert (cfg.train["beta"], cfg.train["gamma"], cfg.train["lr"]) == (0.1, 0.05, 5e-4)
    assert cfg.train["epochs"] == 3 and "sysbench_multiturn" in cfg.eval.tasks
    assert (cfg.eval.backend, cfg.sampling.backend) == ("vllm", "vllm")  # one engine
    # every example kind and loss the paper's Table 1 and the noise controls need
    from rpo_bench.pairs import STRATEGIES

    assert set(STRATEGIES) <= set(cfg.grid.strategy)
    losses = {cfg.train_settings(s)["loss"] for s in cfg.grid.strategy}
    assert losses == {"dpo", "rpo", "sft", "kto", "cdpo", "robust_dpo"}
    # the authors' data pipeline (issue 14) and trainer choices
    assert (cfg.data.kind, cfg.data.generate.model, cfg.judge.model) == (
        "freetext", "gpt-4o-mini", "gpt-4o-mini")  # fmt: skip
    assert (cfg.judge.triggered, cfg.sampling.history, cfg.sampling.pool) == (
        "llm", "teacher", "critic")  # fmt: skip
    assert cfg.sampling.teacher.threshold == 0.7 and cfg.pairs.reverser.model == "gpt-4o-mini"
    assert cfg.pairs.min_margin == 3 and cfg.train["val_fraction"] == 0.1
    assert cfg.train["batch_size"] * cfg.train["grad_accum"] == 1024
    verifiable = config_mod.load(ABLATIONS / "paper_llama8b_verifiable.yaml")
    assert (verifiable.data.kind, verifiable.judge.kind) == ("verifiable", "rule")
    assert verifiable.train == cfg.train and verifiable.grid == cfg.grid


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
    # By hand from the same seeded draws: a resample's mean is the share of its 4 picks that
    # are not prompt 3; the interval is the 2.5th and 97.5th percentile (linear between ranks).
    draws = np.random.default_rng(0).integers(0, 4, size=(500, 4)).tolist()
    means = sorted(sum(i != 3 for i in picks) / 4 for picks in draws)

    def percentile(q):
        rank = q / 100 * (len(means) - 1)
        below = math.floor(rank)
        above = min(below + 1, len(means) - 1)
        return means[below] + (rank - below) * (means[above] - means[below])

    assert delta == 0.75
    assert lo == pytest.approx(percentile(2.5), abs=1e-12)
    assert hi == pytest.approx(percentile(97.5), abs=1e-12)
    # Identical differences: every resample has the same mean, so the interval is that point.
    assert paired_bootstrap([0.5] * 5, [0.25] * 5, n_boot=50) == (0.25, 0.25, 0.25)


@pytest.mark.slow
def test_smoke_preset_end_to_end_with_kill_and_resume(tmp_path):
    """Kill the run while it trains, rerun with --resume: it completes, and no stage that
    had finished before the kill is computed again."""
    work, out = tmp_path / "work", tmp_path / "report"
    cmd = [sys.executable, "-m", "rpo_bench.ablate", "--config", str(ABLATIONS / "smoke.yaml"),
           "--work", str(work), "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    foreign = work / "train" / "another-study"  # a finished stage of another config's grid
    foreign.mkdir(parents=True)
    (foreign / "timing.json").write_text(json.dumps({"seconds": 1e6}))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 480
    # Training is quick (seconds per cell): kill as soon as a training stage has started.
    while time.time() < deadline and not list(work.glob("train/*.partial")):
        assert proc.poll() is None, "the run ended before any training started"
        time.sleep(0.05)
    assert list(work.glob("train/*.partial")), "no training stage was reached"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {f"{p.parent.name}/{p.name}" for p in work.glob("*/*") if p.is_dir()}
    finished = {f for f in finished if not f.endswith(".partial")}
    assert any(f.startswith("samples/") for f in finished)

    done = subprocess.run([*cmd, "--resume"], cwd=REPO, env=env, check=True, capture_output=True,
                          text=True)  # fmt: skip
    # The terminal gets the plan, the bars and the trainer's lines; libraries' noise goes to
    # the run's log, which both runs appended to.
    terminal, log = done.stdout + done.stderr, (work / "ablate.log").read_text()
    assert "examples (" in terminal and "examples (" in log
    assert "Loading weights" not in terminal and "FutureWarning" not in terminal
    assert log.count("python -m rpo_bench.ablate") == 2 and "stage train:" in log
    results = json.loads((out / "results.json").read_text())
    computed = set(results["provenance"]["computed_this_run"])
    assert not computed & finished, computed & finished
    assert any(c.startswith("train/") for c in computed)
    assert len(results["cells"]) == 8 and set(results["base"]) == {"smollm2-135m"}
    kinds = {c["strategy"]: c["pairs"]["kind"] for c in results["cells"]}
    assert kinds == {"dpo_count": "preference", "rpo": "preference", "sft_chosen": "sft",
                     "kto": "kto"}  # fmt: skip
    report = (out / "report.md").read_text()
    for task in ("ifeval_local", "ifbench", "heldout"):
        assert f"## {task} (smollm2-135m)" in report
    for png in ("strategies_smollm2-135m.png", "noise_smollm2-135m.png", "margins.png",
                "training.png", "forest_smollm2-135m.png", "pairs.png"):  # fmt: skip
        assert (out / png).stat().st_size > 1000 and f"]({png})" in report
    # The verdict opens the report; one seed: the power section says what it leaves out.
    first = report.split("\n\n")[1]
    assert first.startswith("**Verdict.** Primary endpoint: `rpo` minus")
    # every cell measured its learning on the gold set; a few pairs of one epoch cannot pass
    # the learning gate, so no verdict between trained strategies stands
    for c in results["cells"]:
        end = c["train"]["learning"][-1]
        assert end["gold"]["n"] > 0 and ("train" in end) == (c["strategy"] != "sft_chosen")
    assert first.count("**inconclusive: ") == 2 and "(statistically: " in first
    assert "| gold accuracy |" in report and (out / "learning.png").stat().st_size > 1000
    assert "## Power" in report and "seed-to-seed variance is not measured" in report
    power = results["power"]["heldout"]
    assert power["primary"] and power["n_seeds"] == 1 and not power["seed_variance_measured"]
    assert power["n_prompts"] > 0 and power["mde_points"] >= 0
    assert results["config"]["name"] == "smoke" and results["provenance"]["git_commit"]
    # the compute time counts this config's stages only, not the rest of a shared store
    assert 0 < sum(results["provenance"]["stage_seconds"].values()) < 1e5
    check_results_against_the_store(results, work)


# --- the smoke run's results, recomputed from what its stages stored ---------------------------


def stage_folders(work: Path, stage: str) -> list[tuple[Path, dict]]:
    """(folder, inputs) of every finished folder of a stage."""
    folders = [f for f in sorted((work / stage).iterdir()) if not f.name.endswith(".partial")]
    return [(f, json.loads((f / "inputs.json").read_text())) for f in folders]


def same(a, b) -> bool:
    """Equal as JSON (so NaN equals NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def check_results_against_the_store(results: dict, work: Path) -> None:
    evals = stage_folders(work, "eval")
    for model, base in results["base"].items():
        (folder,) = [f for f, inputs in evals if inputs["model"] == {"base": model}]
        assert same(base, json.loads((folder / "eval.json").read_text()))
    trained = 0
    for cell in results["cells"]:
        key = (cell["model"], cell["strategy"], cell["noise"], cell["seed"])
        ((pairs_folder, pairs_inputs),) = [
            (f, inputs)
            for f, inputs in stage_folders(work, "pairs")
            if (
                inputs["judged"]["samples"]["model"],
                inputs["strategy"],
                inputs["judged"]["noise"],
                inputs["seed"],
            )
            == key
        ]
        check_pairs(cell, pairs_folder, results["config"]["pairs"])
        if cell["pairs"]["examples"] == 0:
            assert cell["train"] == {"skipped": "no pairs", "log": []}
            assert same(cell["eval"], results["base"][cell["model"]])
            continue
        trained += 1
        (folder,) = [f for f, inputs in evals if same(inputs["model"].get("pairs"), pairs_inputs)]
        assert same(cell["eval"], json.loads((folder / "eval.json").read_text()))
    assert len(evals) == len(results["base"]) + trained
    for folder, inputs in evals:
        check_eval(folder, inputs, work)


def check_pairs(cell: dict, folder: Path, options: dict) -> None:
    """The reported pair statistics are the stored ones, and they count the stored pairs."""
    stats = cell["pairs"]
    assert same(stats, json.loads((folder / "pairs.stats.json").read_text()))
    assert stats["strategy"] == cell["strategy"]
    rows = read_jsonl(folder / "pairs.jsonl")
    judged = {r["id"]: r for r in read_jsonl(Path(stats["samples"]))}
    responses = sum(len(r["responses"]) for r in judged.values())
    assert stats["examples"] == len(rows) and stats["turns_used"] == len({r["turn"] for r in rows})
    if stats["kind"] != "preference":  # SFT / KTO examples: one stored response each
        assert (stats["turns"], stats["responses"]) == (len(judged), responses)
        for r in rows:
            assert r["kind"] == stats["kind"] and r["strategy"] == cell["strategy"]
            texts = [resp["text"] for resp in judged[r["turn"]]["responses"]]
            assert r["response"] == texts[r["response_index"]]
        return
    margins = [r["margin"] for r in rows]
    assert stats["pairs"] == len(rows)
    assert (stats["turns"], stats["responses"]) == (len(judged), responses)
    assert stats["turns_with_pair"] == len({r["turn"] for r in rows})
    assert stats["margin_histogram"] == {str(m): n for m, n in sorted(Counter(margins).items())}
    if rows:
        assert stats["mean_margin"] == pytest.approx(sum(margins) / len(rows), abs=rescore.TOL)
        assert stats["pairs_per_response"] == pytest.approx(len(rows) / responses, abs=rescore.TOL)
    else:
        assert stats["mean_margin"] is None and stats["pairs_per_response"] == 0
    if options["max_pairs_per_turn"] is not None:
        per_turn = Counter(r["turn"] for r in rows)
        assert max(per_turn.values(), default=0) <= options["max_pairs_per_turn"]
    for r in rows:
        assert r["strategy"] == cell["strategy"] and r["margin"] >= options["min_margin"]
        texts = [resp["text"] for resp in judged[r["turn"]]["responses"]]
        assert (r["chosen"], r["rejected"]) == (
            texts[r["chosen_index"]],
            texts[r["rejected_index"]],
        )


def check_eval(folder: Path, inputs: dict, work: Path) -> None:
    """Every stored metric and per-prompt score equals the stored replies scored again."""
    stored = json.loads((folder / "eval.json").read_text())
    assert set(stored) == set(inputs["eval"]["tasks"]) == {"ifeval_local", "ifbench", "heldout"}
    limit = inputs["eval"]["limit"]
    for task, file in rescore.FILES.items():
        rows = read_jsonl(folder / f"samples_{task}.jsonl")
        first = [str(d["key"]) for d in read_jsonl(resource(*file))[:limit]]
        assert [str(r["key"]) for r in rows] == first
        check_task(
            stored[task], rows, [rescore.score_reply(task, r["key"], r["reply"]) for r in rows]
        )
    (conv_folder,) = [
        f
        for f, conv_inputs in stage_folders(work, "conversations")
        if same(conv_inputs, inputs["heldout"])
    ]
    convs = {c.id: c for c in read_conversations(conv_folder / "conversations.jsonl")}
    rows = read_jsonl(folder / "samples_heldout.jsonl")
    expected_keys = {f"{c.id}/t{k}" for c in convs.values() for k in range(1, len(c.turns) + 1)}
    assert len(rows) == len(expected_keys) and {r["key"] for r in rows} == expected_keys
    scored = []
    for r in rows:
        conv_id, turn = r["key"].rsplit("/t", 1)
        scored.append(score(convs[conv_id].turns[int(turn) - 1].constraints, r["reply"]))
    check_task(stored["heldout"], rows, scored)


def check_task(stored: dict, rows: list[dict], scored: list[dict]) -> None:
    for row, again in zip(rows, scored, strict=True):
        assert {k: row[k] for k in again} == again, row["key"]
    expected = {m: v for m, v in rescore.aggregate(scored).items() if m in rescore.LEVELS}
    expected["overall"] = rescore.mean([expected[m] for m in rescore.LEVELS])
    assert set(stored["metrics"]) == set(expected)
    for name, value in expected.items():
        assert rescore.close(stored["metrics"][name], value), (name, stored["metrics"][name], value)
    per_prompt = [prompt_score(again) for again in scored]
    assert len(stored["per_prompt"]) == len(per_prompt)
    for got, want in zip(stored["per_prompt"], per_prompt, strict=True):
        assert (got is None and want is None) or rescore.close(got, want), (got, want)


def prompt_score(scored: dict) -> float | None:
    """One prompt's score: the mean of its four metrics, instruction-level as the share of its
    instructions followed; None where a metric is None or it has no checked instruction."""
    parts = []
    for level in rescore.LEVELS:
        value = scored[level]
        if isinstance(value, list):
            if not value:
                return None
            value = rescore.mean([float(x) for x in value])
        if value is None:
            return None
        parts.append(float(value))
    return rescore.mean(parts)


def test_strategy_variants_train_shared_pairs_with_their_own_loss(tmp_path):
    text = """name: v
strategies:
  dpo_count_robust: {pairs: dpo_count, train: {loss: robust_dpo, label_smoothing: 0.2}}
train: {beta: 0.2}
grid: {strategy: [dpo_count, dpo_count_robust, rpo]}
"""
    cfg = config_mod.load(write(tmp_path, text))
    assert [c.strategy for c in cfg.cells()] == ["dpo_count", "dpo_count_robust", "rpo"]
    assert cfg.pair_strategy("dpo_count_robust") == cfg.pair_strategy("dpo_count") == "dpo_count"
    assert cfg.train_settings("dpo_count") == {"loss": "dpo", "beta": 0.2}
    assert cfg.train_settings("rpo") == {"loss": "rpo", "beta": 0.2}
    robust = {"loss": "robust_dpo", "beta": 0.2, "label_smoothing": 0.2}
    assert cfg.train_settings("dpo_count_robust") == robust
    bad = {
        "strategies: {rpo: {pairs: dpo_count}}\n":
            r":2: field 'strategies\.rpo' is a pair strategy's name: a variant needs a name",
        "strategies: {x: {pairs: nope}}\n":
            r":2: field 'strategies\.x\.pairs' has the unknown value 'nope'",
        "strategies: {x: {pairs: rpo, loss: dpo}}\n":
            r":2: field 'strategies\.x\.loss' is an unknown key",
        "strategies: {x: {pairs: rpo, train: {label_smoothing: 0.7}}}\ngrid: {strategy: [x]}\n":
            r":2: field 'strategies\.x\.train\.label_smoothing' must be in \[0, 0\.5\), got 0\.7 "
            r"\(grid strategy x\)",
    }  # fmt: skip
    for body, message in bad.items():
        with pytest.raises(ValueError, match=message):
            config_mod.load(write(tmp_path, "name: v\n" + body))
