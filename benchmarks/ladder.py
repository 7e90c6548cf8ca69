"""The model-size ladder side by side: each model's speed and its base scores, in one run.

For each model (SmolLM2-135M, Qwen2.5-Coder-0.5B and -1.5B, where prepared):
- generation: tokens/s and share of the bfloat16 matmul peak on `benchmarks/rollout.py`'s
  conversations (engine `fast`, greedy, 128 new tokens a turn);
- training: LoRA tokens/s and peak RSS on `benchmarks/train.py`'s pairs (its own
  subprocess, so the RSS is its own);
- the base model's scores: IFEval (all 541 prompts) and IFBench (all 294) under their
  official protocols (greedy; 1280 and 4096 new tokens), the held-out multi-turn set
  (`cpu.yaml`'s 96 two-turn conversations, 128 new tokens) and the conditionality index,
  each with its 95% bootstrap interval over prompts (items: over turns).

Size and family are confounded: SmolLM2 is a general chat model, the Qwen models are
code-tuned (docs/models.md). Every part is written to `<out>/<model>/<part>.json` as it
finishes and skipped when found, so a run stopped between parts resumes where it stopped.
`--limit N` scores the first N prompts of each benchmark (a smaller run, labelled so).

    .venv/bin/python benchmarks/ladder.py [--models a,b] [--limit N] [--out runs/ladder]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peak import peaks

LADDER = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
PARTS = ("generation", "training", "ifeval_local", "ifbench", "heldout", "conditionality")
TRAIN_PAIRS = 64


def _backend(model: str) -> Any:
    from rpo_bench.rollout.hf import HFBackend
    from rpo_bench.rollout.settings import ENGINES

    return HFBackend(model, batch_size=32, engine=ENGINES["fast"])


def _params(model: str) -> int:
    from rpo_bench import models

    return sum(p.numel() for p in models.load(model).model.parameters())


def generation(model: str, peak: dict[str, float]) -> dict[str, Any]:
    from rollout import MAX_NEW_TOKENS, conversations, timed

    from rpo_bench.rollout.settings import GenerationSettings

    backend = _backend(model)
    replies, seconds = timed(
        backend, conversations(), GenerationSettings(max_new_tokens=MAX_NEW_TOKENS)
    )
    tokens = sum(len(backend.tokenizer(r)["input_ids"]) for r in replies)
    gflop = 2 * _params(model) / 1e9
    rate = tokens / seconds
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": rate,
            "peak_share": rate * gflop / peak["bfloat16"]}  # fmt: skip


def training(model: str, peak: dict[str, float]) -> dict[str, Any]:
    from train import launch, make_pairs

    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.jsonl"
        make_pairs(TRAIN_PAIRS, pairs)
        run = launch(pairs, "ours", "lora", 0, {"model": model})
    rate = run["tokens"] / run["seconds"]
    # LoRA: 4N FLOP per token of training, 2N of the reference pass (recomputation not counted)
    gflop = 6 * _params(model) / 1e9
    return {**run, "tokens_per_s": rate, "peak_share": rate * gflop / peak["bfloat16"]}


def _interval(scores: list[float | None]) -> dict[str, Any]:
    from rpo_bench.ablate.stats import hierarchical_bootstrap

    kept = np.array([[s for s in scores if s is not None]], float) * 100
    mean, lo, hi = hierarchical_bootstrap(kept, 1000)
    return {"points": mean, "ci95": [lo, hi], "n": kept.shape[1]}


def benchmark(model: str, name: str, limit: int | None) -> dict[str, Any]:
    from rpo_bench.evaluate.decoding import OFFICIAL
    from rpo_bench.evaluate.metrics import prompt_score
    from rpo_bench.evaluate.tasks import single_turn
    from rpo_bench.rollout.settings import GenerationSettings

    budget = OFFICIAL[name]["max_gen_toks"]
    start = time.perf_counter()
    rows = single_turn(name, _backend(model), GenerationSettings(max_new_tokens=budget), limit)
    return {"protocol": f"greedy, {budget} new tokens", "limit": limit,
            "seconds": time.perf_counter() - start,
            **_interval([prompt_score(r) for r in rows])}  # fmt: skip


def heldout(model: str, part: str) -> dict[str, Any]:
    from rpo_bench.data.conversations import write_conversations
    from rpo_bench.data.verifiable import build
    from rpo_bench.evaluate import conditionality
    from rpo_bench.evaluate import heldout as heldout_task
    from rpo_bench.evaluate.metrics import prompt_score
    from rpo_bench.rollout.settings import GenerationSettings

    settings, start = GenerationSettings(max_new_tokens=128), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conversations.jsonl"
        write_conversations(path, build(96, 2, 2, 0, "heldout", "user"))  # cpu.yaml's set
        if part == "heldout":
            rows = heldout_task.play(path, _backend(model), settings)
            return {"seconds": time.perf_counter() - start,
                    **_interval([prompt_score(r) for r in rows])}  # fmt: skip
        index = conditionality.index(conditionality.play(path, _backend(model), settings), 1000)
    return {"seconds": time.perf_counter() - start, "j": index["metrics"]["conditionality"],
            "ci95": index["ci95"], "n": index["n_items"]}  # fmt: skip


def measure(model: str, part: str, limit: int | None, peak: dict[str, float]) -> dict[str, Any]:
    if part == "generation":
        return generation(model, peak)
    if part == "training":
        return training(model, peak)
    if part in ("ifeval_local", "ifbench"):
        return benchmark(model, part, limit)
    return heldout(model, part)


def tables(found: dict[str, dict[str, Any]]) -> list[str]:
    def ci(r: dict | None, key: str = "points") -> str:
        if not r:
            return "-"
        lo, hi = r["ci95"]
        scale = 1 if key == "points" else 100
        return f"{r[key] * scale:.1f} [{lo * scale:.1f}, {hi * scale:.1f}] (n={r['n']})"

    lines = ["| model | generation tokens/s | share of bf16 peak | training tokens/s (LoRA) "
             "| share of bf16 peak | peak RSS MB |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for model, r in found.items():
        g, t = r.get("generation"), r.get("training")
        lines.append(f"| {model} | " + " | ".join([
            f"{g['tokens_per_s']:.1f}" if g else "-", f"{g['peak_share']:.1%}" if g else "-",
            f"{t['tokens_per_s']:.1f}" if t else "-", f"{t['peak_share']:.1%}" if t else "-",
            f"{t['peak_rss_mb']:.0f}" if t else "-"]) + " |")  # fmt: skip
    lines += ["", "| model | IFEval | IFBench | held-out multi-turn | conditionality J (x100) |",
              "|---|---|---|---|---|"]  # fmt: skip
    for model, r in found.items():
        lines.append(f"| {model} | {ci(r.get('ifeval_local'))} | {ci(r.get('ifbench'))} | "
                     f"{ci(r.get('heldout'))} | {ci(r.get('conditionality'), 'j')} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(LADDER))
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--limit", type=int, help="the first N prompts of IFEval and IFBench")
    parser.add_argument("--out", default="runs/ladder")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    from rpo_bench import models

    hf_logging.disable_progress_bar()  # a bar per weight load would bury the figures

    torch.manual_seed(0)
    peak = peaks()
    print(f"torch threads: {torch.get_num_threads()}; "
          + ", ".join(f"matmul peak {k}: {v:.0f} GFLOP/s" for k, v in peak.items()))  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for model in args.models.split(","):
        try:
            models.prepare(model)
        except (FileNotFoundError, ValueError) as err:
            print(f"{model}: not available ({err})", file=sys.stderr)
            continue
        found[model] = {}
        for part in args.parts.split(","):
            path = Path(args.out) / model / f"{part}.json"
            if part in ("ifeval_local", "ifbench") and args.limit:
                path = path.with_name(f"{part}_limit{args.limit}.json")
            if not path.exists():
                result = measure(model, part, args.limit, peak)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=1) + "\n")
                print(f"{model} {part}: {json.dumps(result)}", flush=True)
            found[model][part] = json.loads(path.read_text())
    print("\n".join(tables(found)))


if __name__ == "__main__":
    main()
