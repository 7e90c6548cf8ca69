"""Compact trainer vs TRL DPOTrainer: pairs/s, tokens/s and peak RSS, LoRA and full fine-tuning.

The embedded model, N generated pairs shaped like the pipeline's (multi-turn-ish prompts
with constraints rendered by `rpo_bench.data.prompt.render`, replies of ~60-150 tokens),
one epoch, the same hyperparameters on both sides (batch 8, max_length 512, AdamW, cosine
with 10% warmup, grad clip 1.0, no eval, no logging, no saving during training). Each
trainer runs with its defaults on this machine: TRL in float32 without activation
checkpointing; ours with bf16 autocast (a CPU with native bfloat16), shared-prompt rows
and activation checkpointing. Each run is its own subprocess, so peak RSS is its own.
Timed: tokenization + (reference pass) + training; model load and final save excluded.
tokens/s counts the plain workload (prompt + reply of both sequences of a pair) for all.
Share of peak: model FLOPs of that workload (reference pass 2N per token, training 6N
full or 4N LoRA, N = parameters; recomputation not counted) per second, over this run's
measured matmul peak in the trainer's dtype (bfloat16 for ours with autocast, else float32).

    .venv/bin/python benchmarks/train.py [--pairs 256] [--levers]

--levers: ours alone (LoRA), adding one lever at a time, with each one's effect.
Last line: speedup_vs_trl=<trl/ours seconds> peak_rss_ratio=<ours/trl> peak_rss_mb=<ours>
(LoRA setting).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peak import peaks

from rpo_bench.cpu import native_bf16

BATCH, MAX_LENGTH, BETA = 8, 512, 0.1
LR = {"lora": 5e-4, "full": 1e-5}
LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}


def make_pairs(n: int, path: Path) -> None:
    """Pairs of the shape the data stage writes: rendered prompts, realistic reply lengths."""
    from rpo_bench.constraints import from_ifeval
    from rpo_bench.data.prompt import render
    from rpo_bench.jsonl import read_jsonl, write_jsonl
    from rpo_bench.paths import resource as res

    seeds = read_jsonl(res("seeds", "self_instruct_seed_tasks.jsonl"))
    ifeval = read_jsonl(res("ifeval", "input_data.jsonl"))
    mt = read_jsonl(res("seeds", "mt_bench_questions.jsonl"))
    outputs = [inst["output"] for s in seeds for inst in s["instances"] if inst["output"].strip()]

    def reply(k: int, words: int) -> str:  # join seed answers up to ~words words
        text, j = [], k
        while sum(len(t.split()) for t in text) < words:
            text.append(outputs[j % len(outputs)])
            j += 7
        return " ".join(" ".join(text).split()[:words])

    rows = []
    for i in range(n):
        seed, ev = seeds[i % len(seeds)], ifeval[i % len(ifeval)]
        constraints = [
            from_ifeval(cid, {k: v for k, v in kw.items() if v is not None})
            for cid, kw in zip(ev["instruction_id_list"], ev["kwargs"], strict=True)
        ]
        history = []
        if i % 2:  # every other pair continues a conversation
            history = [{"role": "user", "content": mt[i % len(mt)]["turns"][0]},
                       {"role": "assistant", "content": reply(i + 3, 60)}]  # fmt: skip
        task = seed["instruction"] + ("\n\n" + seed["instances"][0]["input"]).rstrip()
        prompt = render(task, constraints, slot="system" if i % 3 == 0 else "user",
                        history=history)  # fmt: skip
        words = 45 + (i * 37) % 65  # ~60-150 tokens
        rejected = reply(i + 11, 45 + (i * 53) % 65)
        rows.append({"id": f"bench-{i}", "prompt": prompt, "chosen": reply(i, words),
                     "rejected": rejected, "margin": 1 + i % 3})  # fmt: skip
    write_jsonl(path, rows)


def run_ours(pairs: Path, setting: str, out: Path, overrides: dict) -> dict:
    from rpo_bench.train import TrainConfig, train

    cfg = TrainConfig(
        out=str(out), loss="dpo", beta=BETA, lora=LORA if setting == "lora" else None,
        lr=LR[setting], batch_size=BATCH, max_length=MAX_LENGTH, warmup_ratio=0.1,
        log_every=10**6, **overrides,
    )  # fmt: skip
    result = train(pairs, cfg, quiet=True)
    return {
        "seconds": sum(result.seconds.values()),
        "tokens": result.tokens,
        "detail": result.seconds,
    }


def run_trl(pairs: Path, setting: str, out: Path, overrides: dict) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from rpo_bench import models
    from rpo_bench.jsonl import read_jsonl

    loaded = models.load(models.DEFAULT_MODEL)
    rows = [{"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "assistant", "content": r["rejected"]}]}
            for r in read_jsonl(pairs)]  # fmt: skip
    args = DPOConfig(
        output_dir=str(out), per_device_train_batch_size=BATCH, gradient_accumulation_steps=1,
        learning_rate=LR[setting], lr_scheduler_type="cosine", warmup_steps=0.1,
        num_train_epochs=1, max_length=MAX_LENGTH, beta=BETA, max_grad_norm=1.0,
        weight_decay=0.0, logging_strategy="no", save_strategy="no", eval_strategy="no",
        report_to="none", bf16=False, gradient_checkpointing=False, use_cpu=True,
        disable_tqdm=True, seed=0, dataloader_num_workers=0,
    )  # fmt: skip
    peft = None
    if setting == "lora":
        peft = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                          target_modules=LORA["target_modules"], task_type="CAUSAL_LM")  # fmt: skip
    began = time.perf_counter()
    trainer = DPOTrainer(model=loaded.model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=loaded.tokenizer, peft_config=peft)  # fmt: skip
    trainer.train()
    return {"seconds": time.perf_counter() - began}


# Ours with one more lever at a time (the last row is the trainer's default).
LEVERS = (
    ("float32, plain rows", {"bf16": False, "share_prompt": False, "grad_checkpointing": False}),
    ("+ shared-prompt rows", {"bf16": False, "share_prompt": True, "grad_checkpointing": False}),
    ("+ bf16 autocast", {"bf16": True, "share_prompt": True, "grad_checkpointing": False}),
    (
        "+ activation checkpointing",
        {"bf16": True, "share_prompt": True, "grad_checkpointing": True},
    ),
)


N_PARAMS = 134_515_008  # SmolLM2-135M (tied embeddings counted once)


def flops(tokens: int, setting: str) -> float:
    """Model FLOPs of one epoch: reference forward + training forward/backward."""
    return tokens * N_PARAMS * (2 + (6 if setting == "full" else 4))


def plain_tokens(pairs: Path) -> int:
    """Non-pad tokens of the plain workload: prompt + reply, for chosen and for rejected."""
    from rpo_bench import models
    from rpo_bench.train.examples import read_pairs
    from rpo_bench.train.tokenize import tokenize_pairs

    tok = models.load(models.DEFAULT_MODEL).tokenizer
    encoded = tokenize_pairs(read_pairs(pairs), tok, MAX_LENGTH).pairs
    return sum(2 * len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in encoded)


def launch(pairs: Path, who: str, setting: str, threads: int, overrides: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", who, "--setting", setting,
           "--pairs-file", str(pairs), "--threads", str(threads),
           "--overrides", json.dumps(overrides)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        sys.exit(f"{who}/{setting} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        fn = run_ours if args.worker == "ours" else run_trl
        report = fn(
            Path(args.pairs_file), args.setting, Path(tmp) / "out", json.loads(args.overrides)
        )
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--settings", default="lora,full")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--levers", action="store_true", help="each lever's effect (ours, LoRA)")
    parser.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--pairs-file", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.jsonl"
        make_pairs(args.pairs, pairs)
        tokens = plain_tokens(pairs)
        peak = peaks()
        print(f"pairs={args.pairs} batch={BATCH} max_length={MAX_LENGTH} tokens/epoch={tokens} "
              + " ".join(f"matmul_peak_{k}={v:.0f}GFLOP/s" for k, v in peak.items()))  # fmt: skip
        if args.levers:
            return levers(pairs, tokens, args)
        results: dict[tuple[str, str], dict] = {}
        for setting in args.settings.split(","):
            for who in ("ours", "trl"):
                results[setting, who] = launch(pairs, who, setting, args.threads, {})
    print("| setting | trainer | seconds | pairs/s | tokens/s | share of peak | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (setting, who), r in results.items():
        dtype = "bfloat16" if who == "ours" and native_bf16() else "float32"
        share = flops(tokens, setting) / r["seconds"] / 1e9 / peak[dtype]
        print(f"| {setting} | {who} | {r['seconds']:.1f} | {args.pairs / r['seconds']:.2f} | "
              f"{tokens / r['seconds']:.0f} | {share:.1%} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
    for setting in args.settings.split(","):
        ours, trl = results[setting, "ours"], results[setting, "trl"]
        print(f"{setting}: speedup_vs_trl={trl['seconds'] / ours['seconds']:.2f} "
              f"peak_rss_ratio={ours['peak_rss_mb'] / trl['peak_rss_mb']:.2f}")  # fmt: skip
    key = "lora" if "lora" in args.settings else args.settings.split(",")[0]
    ours, trl = results[key, "ours"], results[key, "trl"]
    print(
        f"speedup_vs_trl={trl['seconds'] / ours['seconds']:.2f} "
        f"peak_rss_ratio={ours['peak_rss_mb'] / trl['peak_rss_mb']:.2f} "
        f"peak_rss_mb={ours['peak_rss_mb']:.0f}"
    )


def levers(pairs: Path, tokens: int, args: argparse.Namespace) -> None:
    print("| ours, LoRA | seconds | pairs/s | tokens/s | speedup vs previous row | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    previous = None
    for name, overrides in LEVERS:
        r = launch(pairs, "ours", "lora", args.threads, overrides)
        gain = f"{previous / r['seconds']:.2f}x" if previous else "-"
        print(f"| {name} | {r['seconds']:.1f} | {args.pairs / r['seconds']:.2f} | "
              f"{tokens / r['seconds']:.0f} | {gain} | {r['peak_rss_mb']:.0f} |")  # fmt: skip
        previous = r["seconds"]


if __name__ == "__main__":
    main()
