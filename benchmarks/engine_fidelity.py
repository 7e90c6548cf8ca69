"""Does bfloat16 change IFEval scores? The fast engine (bfloat16) vs float32, all 541 prompts.

Greedy, 256 new tokens, the embedded model, the same scorer as `ifeval_local`. Prints both
engines' four IFEval metrics, the share of identical replies, and each metric's
difference (bfloat16 - float32) with its 95% paired bootstrap interval over prompts
(prompt-level: per prompt 0/1; instruction-level: each prompt's share followed; overall:
their mean per prompt). float32 here is the in-place-cache engine, whose replies
equal the reference loop's (benchmarks/rollout.py, tests/test_fast_engine.py).

    .venv/bin/python benchmarks/engine_fidelity.py [--limit N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rpo_bench import models
from rpo_bench.ablate.stats import paired_bootstrap
from rpo_bench.evaluate.metrics import METRICS, aggregate, prompt_score
from rpo_bench.evaluate.tasks import single_turn
from rpo_bench.rollout.hf import HFBackend
from rpo_bench.rollout.settings import ENGINES, GenerationSettings


def per_prompt(row: dict, metric: str) -> float:
    v = row[metric]
    return float(np.mean(v)) if isinstance(v, list) else float(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N prompts (default all)")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()
    loaded = models.load(models.DEFAULT_MODEL)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    rows = {}
    for name in ("inplace_float32", "fast"):
        backend = HFBackend(loaded.model, loaded.tokenizer, batch_size=32, engine=ENGINES[name])
        began = time.perf_counter()
        rows[name] = single_turn("ifeval_local", backend, settings, args.limit)
        print(f"{name}: {len(rows[name])} prompts in {time.perf_counter() - began:.0f} s")
    f32, b16 = rows["inplace_float32"], rows["fast"]
    same = np.mean([a["reply"] == b["reply"] for a, b in zip(f32, b16, strict=True)])
    print(f"identical replies: {same:.1%}")
    agg = {name: aggregate(r) for name, r in rows.items()}
    print("| metric | float32 | bfloat16 | diff (points) | 95% paired bootstrap | 0 inside |")
    print("|---|---:|---:|---:|---|---|")
    for metric in (*METRICS, "overall"):
        if metric == "overall":
            a, b = [prompt_score(r) for r in b16], [prompt_score(r) for r in f32]
        else:
            a, b = [per_prompt(r, metric) for r in b16], [per_prompt(r, metric) for r in f32]
        d, lo, hi = paired_bootstrap(a, b, n_boot=2000)
        f32_score, b16_score = (100 * agg[name][metric] for name in ("inplace_float32", "fast"))
        print(
            f"| {metric} | {f32_score:.1f} | {b16_score:.1f} | {100 * d:+.2f} "
            f"| [{100 * lo:+.2f}, {100 * hi:+.2f}] | {lo <= 0 <= hi} |"
        )


if __name__ == "__main__":
    main()
