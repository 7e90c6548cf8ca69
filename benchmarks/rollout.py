"""Batched-per-turn rollout vs a naive loop, on the embedded model.

32 three-turn conversations (MT-Bench's two turns plus a follow-up), greedy, at most
128 new tokens per turn. Batched: every live conversation of a turn in one batch.
Naive: each conversation played alone at batch 1. Both in this run, same model.

    .venv/bin/python benchmarks/rollout.py
"""

from __future__ import annotations

import json
import time

import torch

from rpo_bench import models
from rpo_bench.paths import resource
from rpo_bench.rollout.hf import HFBackend
from rpo_bench.rollout.multiturn import Conversation, play
from rpo_bench.rollout.settings import GenerationSettings

N_CONVERSATIONS, MAX_NEW_TOKENS = 32, 128


def conversations() -> list[Conversation]:
    rows = [json.loads(line) for line in resource("seeds", "mt_bench_questions.jsonl").open()]
    follow_up = "Now summarize your previous answer in two sentences."
    return [
        Conversation(str(r["question_id"]), [*r["turns"], follow_up])
        for r in rows[:N_CONVERSATIONS]
    ]


def timed(backend: HFBackend, convs: list[Conversation], settings: GenerationSettings):
    start = time.perf_counter()
    if backend.batch_size == 1:
        samples = [s for c in convs for s in play(backend, [c], settings)]
    else:
        samples = play(backend, convs, settings)
    seconds = time.perf_counter() - start
    tokens = sum(len(backend.tokenizer(r[0])["input_ids"]) for conv in samples for r in conv)
    return samples, tokens, seconds


def main() -> None:
    torch.manual_seed(0)
    loaded = models.load(models.DEFAULT_MODEL)
    convs = conversations()
    settings = GenerationSettings(max_new_tokens=MAX_NEW_TOKENS)
    print(
        f"torch threads: {torch.get_num_threads()}, conversations: {len(convs)} x 3 turns, "
        f"max_new_tokens: {MAX_NEW_TOKENS}, greedy"
    )
    rates = {}
    for name, batch in (("batched_per_turn", N_CONVERSATIONS), ("naive_batch1", 1)):
        backend = HFBackend(loaded.model, loaded.tokenizer, batch_size=batch)
        _, tokens, seconds = timed(backend, convs, settings)
        rates[name] = tokens / seconds
        print(
            f"{name:18s} tokens={tokens:6d} seconds={seconds:7.1f} tokens_per_s={rates[name]:7.1f}"
        )
    print(f"speedup_vs_naive={rates['batched_per_turn'] / rates['naive_batch1']:.2f}")


if __name__ == "__main__":
    main()
