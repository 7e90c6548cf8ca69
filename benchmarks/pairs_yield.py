"""Pairs per sampled response, per pair strategy, and pair noise under judge noise.

On a samples file (argument), or by default on fresh samples of the embedded model:
16 one-turn training conversations with 3 IFEval-style constraints each (rendered by
`render()` inside the sampling stage), n=4 at temperature 1.0, 48 new tokens, seed 0,
judged by the rule judge. For each strategy it prints the pairs,
pairs per sampled response, the share of turns yielding a pair and the mean margin.
Then, taking the judged verdicts (or a file's true_verdicts) as the truth, it flips each
with probability p (`rpo_bench.judge.noise.add_noise`, seeded) and prints pair noise.

    .venv/bin/python benchmarks/pairs_yield.py [samples.jsonl] [--save samples.jsonl]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from rpo_bench.jsonl import read_jsonl, write_jsonl
from rpo_bench.judge.noise import add_noise
from rpo_bench.pairs import PAIR_STRATEGIES, build_pairs, pair_stats, read_samples, turn_from_row

FLIPS = (0.0, 0.1, 0.2, 0.3)


def fresh_samples() -> list[dict]:
    from rpo_bench.data import sample, verifiable
    from rpo_bench.rollout.hf import HFBackend
    from rpo_bench.rollout.settings import GenerationSettings

    convs = verifiable.build(16, turns=1, k=3, seed=0)
    settings = GenerationSettings(temperature=1.0, max_new_tokens=48, seed=0, n=4)
    start = time.perf_counter()
    rows = sample.sample(convs, HFBackend("smollm2-135m", batch_size=16), settings)
    print(f"sampled {len(rows)} turns x n=4 in {time.perf_counter() - start:.1f} s")
    return rows


def flipped(rows: list[dict], p: float, seed: int = 0) -> list[dict]:
    """Rows whose TRUE verdicts (the judged ones when the file has no truth) flip with
    probability p; the truth is kept beside them."""
    out = copy.deepcopy(rows)
    for row in out:
        for r, resp in enumerate(row["responses"]):
            truth = resp.get("true_verdicts", resp["verdicts"])
            resp["true_verdicts"] = truth
            resp["verdicts"] = add_noise(truth, p, seed, str(row["id"]), r)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="?", help="samples JSONL (default: sample afresh)")
    parser.add_argument("--save", help="write the fresh samples here")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.samples:
        read_samples(args.samples)  # validates: errors name the line and field
        rows = read_jsonl(args.samples)
    else:
        rows = fresh_samples()
        if args.save:
            write_jsonl(args.save, rows)
    turns = [turn_from_row(r) for r in rows]
    print(f"{len(turns)} turns, {sum(len(t.responses) for t in turns)} sampled responses")
    print(
        f"{'strategy':<12} {'pairs':>6} {'per resp':>9} {'turns w/ pair':>14} {'margin':>7}  hist"
    )
    for name in PAIR_STRATEGIES:
        s = pair_stats(turns, build_pairs(turns, name))
        print(
            f"{name:<12} {s['pairs']:>6} {s['pairs_per_response']:>9.3f} "
            f"{s['share_turns_with_pair']:>14.3f} {s['mean_margin'] or 0:>7.2f}  "
            f"{s['margin_histogram']}"
        )
    print("\npair noise (share of pairs whose chosen truly fails its prompt) at flip p:")
    print(f"{'strategy':<12} " + " ".join(f"{p:>7g}" for p in FLIPS))
    noisy = {p: [turn_from_row(r) for r in flipped(rows, p)] for p in FLIPS}
    for name in PAIR_STRATEGIES:
        cells = []
        for p in FLIPS:
            noise = pair_stats(noisy[p], build_pairs(noisy[p], name))["pair_noise"]
            cells.append(f"{noise:>7.3f}" if noise is not None else f"{'-':>7}")
        print(f"{name:<12} " + " ".join(cells))


if __name__ == "__main__":
    main()
