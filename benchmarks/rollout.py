"""Rollout engines side by side on the embedded model, with this machine's matmul peak.

32 (--conversations) three-turn conversations (MT-Bench's two turns plus a follow-up),
greedy, at most 128 new tokens per turn. Engines, all in this run on the same model:
- naive_batch1: each conversation played alone at batch 1 (reference engine);
- hf_batched: every live conversation of a turn in one batch, transformers'
  DynamicCache, float32 (the batched loop before the fast engine);
- inplace_float32: the same loop with the in-place KV cache and grouped decode attention;
- fast_float32: that, reusing each finished turn's keys and values for the next turn;
- fast_bfloat16: that, in bfloat16 (the pipeline's CPU default, `fast`);
- continuous_bfloat16: that with continuous batching (`continuous`): a finished row's
  slot takes the next waiting row instead of the batch shrinking. With as many slots as
  conversations nothing waits, so it can only differ from fast_bfloat16 with a smaller
  --batch-size (slots for it, the batch for the other batched engines).
Each engine's share of peak is its model FLOP/s (2 FLOP per weight per generated
token; prompt tokens are not counted) over the measured matmul peak of its dtype.
Agreement: the share of replies (and of reply tokens, position by position) identical
to hf_batched's.

    .venv/bin/python benchmarks/rollout.py [--skip-naive] [--conversations N]
        [--batch-size N] [--engines a,b]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from peak import peaks

from rpo_bench import models
from rpo_bench.paths import resource
from rpo_bench.rollout.hf import HFBackend
from rpo_bench.rollout.multiturn import Conversation, play
from rpo_bench.rollout.settings import ENGINES, Engine, GenerationSettings

N_CONVERSATIONS, MAX_NEW_TOKENS = 32, 128


def conversations(count: int = N_CONVERSATIONS) -> list[Conversation]:
    rows = [json.loads(line) for line in resource("seeds", "mt_bench_questions.jsonl").open()]
    follow_up = "Now summarize your previous answer in two sentences."
    return [Conversation(str(r["question_id"]), [*r["turns"], follow_up]) for r in rows[:count]]


def timed(backend: HFBackend, convs: list[Conversation], settings: GenerationSettings):
    start = time.perf_counter()
    if backend.batch_size == 1:
        samples = [s for c in convs for s in play(backend, [c], settings)]
    else:
        samples = play(backend, convs, settings)
    return [r[0] for conv in samples for r in conv], time.perf_counter() - start


def agreement(tokenizer, replies: list[str], reference: list[str]) -> tuple[float, float]:
    """Share of identical replies; share of reference token positions with the same token."""
    same_tokens = total = 0
    for a, b in zip(replies, reference, strict=True):
        ta, tb = tokenizer(a)["input_ids"], tokenizer(b)["input_ids"]
        same_tokens += sum(x == y for x, y in zip(ta, tb, strict=False))
        total += len(tb)
    same = sum(a == b for a, b in zip(replies, reference, strict=True))
    return same / len(reference), same_tokens / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-naive", action="store_true", help="leave out the batch-1 run")
    parser.add_argument("--conversations", type=int, default=N_CONVERSATIONS)
    parser.add_argument(
        "--batch-size",
        type=int,
        help="rows decoded at once by the batched engines (continuous: its slots); "
        "default: one per conversation",
    )
    parser.add_argument(
        "--engines", help="comma-separated runs, in order (default all); the first is the reference"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    loaded = models.load(models.DEFAULT_MODEL)
    convs = conversations(args.conversations)
    settings = GenerationSettings(max_new_tokens=MAX_NEW_TOKENS)
    peak = peaks()
    gflop_per_token = 2 * sum(p.numel() for p in loaded.model.parameters()) / 1e9
    print(
        f"torch threads: {torch.get_num_threads()}, conversations: {len(convs)} x 3 turns, "
        f"max_new_tokens: {MAX_NEW_TOKENS}, greedy; model: {gflop_per_token:.3f} GFLOP/token; "
        + ", ".join(f"matmul peak {k}: {v:.0f} GFLOP/s" for k, v in peak.items())
    )
    rows = args.batch_size or len(convs)
    runs: list[tuple[str, int, Engine]] = [("hf_batched", rows, ENGINES["reference"])]
    if not args.skip_naive:
        runs.append(("naive_batch1", 1, ENGINES["reference"]))
    runs += [
        ("inplace_float32", rows, ENGINES["inplace_float32"]),
        ("fast_float32", rows, ENGINES["fast_float32"]),
        ("fast_bfloat16", rows, ENGINES["fast"]),
        ("continuous_bfloat16", rows, ENGINES["continuous"]),
    ]
    if args.engines:  # in the order given, so a rerun can swap who runs first
        by_name = {r[0]: r for r in runs}
        runs = [by_name[name] for name in args.engines.split(",")]
    rates, reference = {}, None
    columns = (
        "tokens",
        "seconds",
        "tokens/s",
        "share of peak",
        "identical replies",
        "identical tokens",
    )
    print("| engine | " + " | ".join(columns) + " |\n|---|" + "---:|" * len(columns))
    for name, batch, engine in runs:
        backend = HFBackend(loaded.model, loaded.tokenizer, batch_size=batch, engine=engine)
        replies, seconds = timed(backend, convs, settings)
        tokens = sum(len(loaded.tokenizer(r)["input_ids"]) for r in replies)
        reference = reference or replies
        same, same_tokens = agreement(loaded.tokenizer, replies, reference)
        rates[name] = tokens / seconds
        share = rates[name] * gflop_per_token / peak[engine.dtype]
        rates[name + "_share"] = share
        print(
            f"| {name} | {tokens} | {seconds:.1f} | {rates[name]:.1f} | {share:.1%} "
            f"| {same:.1%} | {same_tokens:.1%} |"
        )
    print(summary(rates))


def summary(rates: dict[str, float]) -> str:
    """fast_bfloat16's rate and its ratios to the other runs that ran."""
    if "fast_bfloat16" not in rates:
        return ""
    fast = rates["fast_bfloat16"]
    line = f"tokens_per_s={fast:.1f}"
    for name, label in (("hf_batched", "hf_batched"), ("naive_batch1", "naive")):
        if name in rates:
            line += f" speedup_vs_{label}={fast / rates[name]:.2f}"
    line += f" peak_share={rates['fast_bfloat16_share']:.3f}"
    if "continuous_bfloat16" in rates:
        line += f" continuous_vs_fast={rates['continuous_bfloat16'] / fast:.2f}"
    return line


if __name__ == "__main__":
    main()
