"""`rpo-bench eval` and the stock lm_eval CLI run ifeval_local on the embedded model; the
metrics each reports equal the replies it wrote, scored again."""

import json
import os
import subprocess
import sys

import rescore

from conftest import REPO


def test_rpo_bench_eval_writes_results_and_samples(tmp_path, prepared_model_dir):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "rpo_bench.cli",
        "eval",
        "--tasks",
        "ifeval_local,ifbench",
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
    assert results["config"]["limit"] == 3 and results["versions"]["lm-eval"] == "0.4.13"
    samples = [json.loads(line) for line in (out / "samples_ifeval_local.jsonl").open()]
    assert [s["doc_id"] for s in samples] == [0, 1, 2]
    assert all(isinstance(s["resps"][0][0], str) for s in samples)
    # The written aggregates are exactly those of the written replies, scored again.
    rescore.assert_metrics_equal(metrics, rescore.rescore_samples("ifeval_local", samples))
    # The decoding protocol is recorded with the settings lm-eval used (official + the cap).
    assert results["decoding"]["ifeval_local"] == {
        "protocol": "official",
        "generation_kwargs": {
            "until": [],
            "do_sample": False,
            "temperature": 0.0,
            "max_gen_toks": 24,
        },
        "source": "IFEval's evaluation (lm-eval ifeval): greedy, 1280 new tokens",
    }
    # IFBench: the checker version, and the official report by category and instruction
    assert results["checkers"]["ifbench"]["version"] == "26.3"
    report = results["breakdowns"]["ifbench"]
    ifbench = results["results"]["ifbench"]
    assert report["loose:prompt-level"] == ifbench["prompt_level_loose_acc,none"]
    assert report["strict:instruction-level"] == ifbench["inst_level_strict_acc,none"]
    ids = [
        i
        for line in (out / "samples_ifbench.jsonl").open()
        for i in json.loads(line)["doc"]["instruction_id_list"]
    ]
    assert {k.split(":", 1)[1] for k in report if k.startswith("strict:")} == {
        "prompt-level",
        "instruction-level",
        *ids,
        *(i.split(":")[0] for i in ids),
    }


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
        "--log_samples",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = (tmp_path / "out").rglob("results_*.json")
    (samples_file,) = (tmp_path / "out").rglob("samples_ifeval_local_*.jsonl")
    metrics = json.loads(results_file.read_text())["results"]["ifeval_local"]
    samples = [json.loads(line) for line in samples_file.open()]
    assert [s["doc_id"] for s in samples] == [0, 1]
    # The saved and the printed aggregates are exactly those of the saved replies, scored again.
    expected = rescore.rescore_samples("ifeval_local", samples)
    rescore.assert_metrics_equal(metrics, expected)
    assert printed_metrics(proc.stdout) == {m: float(f"{v:.4f}") for m, v in expected.items()}


def printed_metrics(stdout: str) -> dict[str, float]:
    """metric -> value from the results table lm_eval prints (| task | ... | metric | dir |
    value | ± | stderr |), which shows values to 4 decimals."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in stdout.splitlines()
        if line.startswith("|")
    ]
    header = rows[0]
    metric, value = header.index("Metric"), header.index("Value")
    return {row[metric]: float(row[value]) for row in rows[2:]}
