"""How far do offline judges agree with GPT-4o on SysBench? Each ladder model is served by
the pinned llama-server on 127.0.0.1 and calibrated with `rpo-bench judge-calibrate` on one
fixed, seeded sample of GPT-4o-labelled turns, with both judge prompts (the project's one
constrained to its JSON schema, SysBench's official one free).

    .venv/bin/python benchmarks/offline_judges.py [--models qwen2.5-coder-0.5b,...]
        [--sample 100] [--seed 0] [--labels llama3_8b] [--out runs/calib] [--max-turns N]

`--max-turns N`: only the first N turns of the sample (in file order, the order a run judges
them): a run stopped for time is reported on the prefix its cache holds, said in the table.

Each (model, prompt) writes <out>/<model>.<prompt>.json (the calibration) and .rows.jsonl
(every judged turn); a finished one is skipped, and the judge cache
(<out>/judgements.sqlite, keyed by the served model file, not the port) lets a killed run
resume without judging a turn twice. The last lines are a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rpo_bench.local_server import LocalServer  # noqa: E402
from rpo_bench.models import gguf_file  # noqa: E402

# (name, judge-calibrate options). 1,024 answer tokens: GPT-4o's answers are a few hundred;
# a longer one is a runaway, counted as cut off instead of filling a 16k slot.
PROMPTS = {
    "rpo_bench": ["--prompts", "rpo_bench", "--json-schema", "--max-new-tokens", "1024"],
    "official": ["--prompts", "official", "--max-new-tokens", "1024"],
}


def calibrate(model: str, prompt: str, args: argparse.Namespace, out: Path) -> None:
    result = out / f"{model}.{prompt}.json"
    if result.exists():
        print(f"{result}: done before, skipped", flush=True)
        return
    data = Path(os.environ.get("RPO_BENCH_DATA", ROOT.parent / "shared" / "data"))
    labels = data / "sysbench" / "judge_labels" / f"{args.labels}.jsonl"
    with LocalServer(gguf_file(model), slots=2, context=16384, log_file=out / "server.log") as s:
        command = [
            sys.executable, "-m", "rpo_bench.cli", "judge-calibrate", "--judge", "openai",
            "--labels", str(labels), "--sample", str(args.sample), "--seed", str(args.seed),
            "--model", model, "--base-url", s.url, "--cache", str(out / "judgements.sqlite"),
            "--rows", str(out / f"{model}.{prompt}.rows.jsonl"), *PROMPTS[prompt],
            *(["--max-turns", str(args.max_turns)] if args.max_turns else []),
        ]  # fmt: skip
        print(" ".join(command), flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 1:  # it ran and judged nothing: said, not stored, so a rerun retries
        print(f"{model} {prompt}: judged nothing: {done.stderr.strip()[-500:]}", flush=True)
        return
    if done.returncode:
        sys.exit(f"{model} {prompt}: exit {done.returncode}\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout)
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    tmp.replace(result)


def _interval(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{value:.2f}"


def table(models: list[str], out: Path) -> None:
    print("| judge | prompt | turns judged / asked | accuracy [95% CI] | kappa [95% CI] | "
          "yes/yes, no/no, yes/no, no/yes | failures | s / judgment |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    constant = None  # a judge with no model that always answers 是, on the same criteria
    for prompt in PROMPTS:
        for model in models:
            path = out / f"{model}.{prompt}.json"
            if not path.exists():
                continue
            r = json.loads(path.read_text())
            c, ci = r["confusion"], r["ci95"]
            if constant is None:
                yes = c["both_yes"] + c["judge_no_reference_yes"]
                constant = (yes, r["criteria"])
            judged = r["turns"] - r["judge_errors"]
            asked = f"{r['turns']}" + (
                f" (the first {r['turns']} of {r['sample']['size']})" if r.get("max_turns") else ""
            )
            print(
                f"| {model} | {prompt} | {judged} / {asked} | "
                f"{_interval(r['accuracy'], ci['accuracy'])} | "
                f"{_interval(r['kappa'], ci['kappa'])} | "
                f"{c['both_yes']}, {c['both_no']}, {c['judge_yes_reference_no']}, "
                f"{c['judge_no_reference_yes']} | {r['judge_errors_by_kind'] or 0} | "
                f"{r['seconds_per_judgment']} |"
            )
    if constant is not None:
        yes, n = constant
        row = f"{yes / n:.2f} | 0 | {yes}, 0, {n - yes}, 0"
        print(f"| always 是 (no model) | – | – | {row} | – | – |")


def by_type(models: list[str], out: Path) -> None:
    """Agreement by SysBench constraint type: accuracy (criteria), one column per run."""
    runs = [(m, p, json.loads(f.read_text())) for p in PROMPTS for m in models
            if (f := out / f"{m}.{p}.json").exists()]  # fmt: skip
    if not runs:
        return
    print("\n| constraint type | " + " | ".join(f"{m} {p}" for m, p, _ in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for kind in sorted({k for *_, r in runs for k in r["by_type"]}):
        cells = [r["by_type"].get(kind, {"accuracy": None, "n": 0}) for *_, r in runs]
        shown = [f"{c['accuracy']:.2f} ({c['n']})" if c["n"] else "–" for c in cells]
        print(f"| {kind} | " + " | ".join(shown) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    parser.add_argument("--prompts", default=",".join(PROMPTS))
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", default="llama3_8b", help="whose replies GPT-4o judged")
    parser.add_argument("--out", default="runs/calib")
    parser.add_argument(
        "--max-turns",
        type=int,
        default=None,
        help="only the first N turns of the sample (a run stopped for time)",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    for prompt in args.prompts.split(","):
        for model in models:
            calibrate(model, prompt, args, out)
    table(models, out)
    by_type(models, out)


if __name__ == "__main__":
    main()
