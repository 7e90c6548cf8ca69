"""`rpo-bench eval` and the stock lm_eval CLI run ifeval_local on the embedded model."""

import json
import os
import subprocess
import sys

from conftest import REPO


def test_rpo_bench_eval_writes_results_and_samples(tmp_path, prepared_model_dir):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "rpo_bench.cli",
        "eval",
        "--limit",
        "3",
        "--max-gen-toks",
        "24",
        "--batch-size",
        "3",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    metrics = results["results"]["ifeval_local"]
    assert 0 <= metrics["prompt_level_strict_acc,none"] <= 1
    assert results["config"]["limit"] == 3 and results["versions"]["lm-eval"] == "0.4.13"
    samples = [json.loads(line) for line in (out / "samples_ifeval_local.jsonl").open()]
    assert len(samples) == 3
    assert all(isinstance(s["resps"][0][0], str) for s in samples)


def test_stock_lm_eval_cli_runs_the_task(tmp_path, prepared_model_dir):
    lm_eval = os.path.join(os.path.dirname(sys.executable), "lm_eval")
    cmd = [
        lm_eval,
        "--include_path",
        str(REPO / "tasks"),
        "--tasks",
        "ifeval_local",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={prepared_model_dir}",
        "--apply_chat_template",
        "--limit",
        "2",
        "--gen_kwargs",
        "max_gen_toks=16",
        "--device",
        "cpu",
        "--output_path",
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "prompt_level_strict_acc" in proc.stdout
