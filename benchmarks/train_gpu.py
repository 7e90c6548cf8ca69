"""The compact trainer's loop on a GPU: tokens/s, peak memory and MFU, full and LoRA, bf16.

A randomly initialised Llama-style model of about 1.1B parameters built from a
LlamaConfig (no downloads), random token pairs (prompt 512 + replies 512 tokens), the
real `rpo_bench.train.loop.train_loop` with bf16 autocast via accelerate. Reference
log-probs are precomputed in real runs, so they are zeros here. MFU = flops/s / peak,
with flops = 6*N per token for full fine-tuning and 4*N for LoRA (no weight gradients of
the frozen base), N the parameter count; peak from a table of dense bf16 FLOPs.

    python benchmarks/train_gpu.py            # GPU, < 5 minutes
    python benchmarks/train_gpu.py --tiny     # a tiny config on CPU, to check the path
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

# dense bf16 peak FLOPs (no sparsity), by device-name substring
PEAK_BF16 = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


def peak_flops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def build(tiny: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    if tiny:
        config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2)  # fmt: skip
    else:  # ~1.1B, Llama-3.2-1B's shape with a 32k vocabulary
        config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=8192,
                             num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                             tie_word_embeddings=True, max_position_embeddings=4096)  # fmt: skip
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        return LlamaForCausalLM(config)


def random_batches(n: int, pairs: int, prompt: int, reply: int, vocab: int):
    from rpo_bench.train.batches import collate
    from rpo_bench.train.tokenize import Encoded

    g = torch.Generator().manual_seed(0)

    def ids(k: int) -> list[int]:
        return torch.randint(3, vocab, (k,), generator=g).tolist()

    return [
        collate(
            [Encoded(b * pairs + i, ids(prompt), ids(reply), ids(reply), 1) for i in range(pairs)],
            pad_id=0,
        )  # fmt: skip
        for b in range(n)
    ]


def measure(setting: str, tiny: bool, steps: int, pairs: int, seq: int) -> dict:
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    from rpo_bench.train.config import TrainConfig
    from rpo_bench.train.logps import SequenceScorer
    from rpo_bench.train.loop import Run, train_loop
    from rpo_bench.train.progress import RunLog
    from rpo_bench.train.trainer import _wrap_lora

    warm = 2
    cfg = TrainConfig(loss="rpo", lora={} if setting == "lora" else None, batch_size=pairs,
                      lr=1e-5, warmup_ratio=0.0, max_length=seq, bf16=torch.cuda.is_available(),
                      max_steps=warm)  # fmt: skip
    model = build(tiny)
    n_params = sum(p.numel() for p in model.parameters())
    if cfg.lora is not None:
        model = _wrap_lora(model, cfg)
    acc = Accelerator(mixed_precision="bf16" if cfg.bf16 else "no")
    scorer = SequenceScorer(model)
    optimizer = torch.optim.AdamW([p for p in scorer.parameters() if p.requires_grad], lr=cfg.lr)
    scheduler = get_cosine_schedule_with_warmup(optimizer, 0, warm + steps)
    scorer, optimizer = acc.prepare(scorer, optimizer)
    batches = random_batches(warm + steps, pairs, seq // 2, seq // 2, model.config.vocab_size)
    ref = torch.zeros(len(batches) * pairs, 2)
    log = RunLog(None, 0, 0, enabled=False, quiet=True)
    run = Run(cfg, acc, scorer, optimizer, scheduler, batches, ref, log, lambda s: None)
    train_loop(run, 0)  # warm-up: allocator, kernels
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    run.cfg.max_steps = warm + steps
    train_loop(run, warm)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    tokens = sum(b.tokens for b in batches[warm:])  # one batch per step (grad_accum 1)
    per_token = (6 if cfg.lora is None else 4) * n_params
    peak = peak_flops()
    return {
        "setting": setting,
        "params": n_params,
        "tokens_per_s": tokens / seconds,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if peak is not None else None,
        "mfu": per_token * tokens / seconds / peak if peak else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model on CPU (path check)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=4, help="pairs per step (2x sequences)")
    parser.add_argument("--seq", type=int, default=1024, help="tokens per sequence")
    args = parser.parse_args()
    if args.tiny:
        args.steps, args.pairs, args.seq = 2, 2, 32
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"device: {device}, steps: {args.steps}, pairs/step: {args.pairs}, seq: {args.seq}")
    for setting in ("full", "lora"):
        r = measure(setting, args.tiny, args.steps, args.pairs, args.seq)
        mem = "n/a" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.1f} GiB"
        mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        print(f"{setting:5s} params={r['params'] / 1e9:.2f}B tokens/s={r['tokens_per_s']:.0f} "
              f"peak_mem={mem} mfu={mfu}")  # fmt: skip
        print("RESULT " + json.dumps(r))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    assert math.isfinite(r["tokens_per_s"])


if __name__ == "__main__":
    main()
