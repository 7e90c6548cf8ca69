"""The ablation's costly stages end to end on a small fixed grid, today's path vs the new one.

The grid is `ablations/cpu_full.yaml`'s, sized like one of its cells (`--scale` shrinks the
conversation counts): one sampling pass (96 conversations x 2 turns x n=4 at 64 new tokens),
the pairs of one strategy at judge noise 0, the training cells that share that pairs file
(cpu_full's `dpo_count` and `dpo_count_robust`: two losses on the same pairs, about 127 at
full scale, 1 epoch, LoRA r=8, batch 4, max_length 384; one cell alone could not gain from
the cache), and one held-out evaluation of the first cell's model
(96 conversations, 192 turns, 128 new tokens, greedy). Every stage runs through the
ablation's own work functions (`rpo_bench.ablate.stages`) or, for training, `train()`.

Each timed stage runs twice, in this process and on the same data:
- today: engine `fast` for sampling and evaluation; training without the reference cache
  (each cell computes its reference log-probs in its own batches);
- new: engine `--engine` for sampling and evaluation; training with the reference cache
  (`TrainConfig.reference_cache`), starting empty, so the first cell's computation counts
  and the second cell reads it, and with `--pack` several pairs to a row
  (`TrainConfig.pack`; the run prints both layouts' share of padding).
Seconds are wall time, model loading included (a stage loads its model). tokens/s:
sampling and evaluation count generated tokens (the replies re-tokenized); training counts
the pairs' plain workload (prompt + reply of both sequences) per epoch and cell. Share of
peak: model FLOPs per second over this run's matmul peak (`benchmarks/peak.py`) in the
stage's dtype, with the FLOP accounting of `benchmarks/rollout.py` (2N per generated token,
prompts not counted) and `benchmarks/train.py` (2N per token for each reference pass a path
computes, 4N for LoRA training, 6N for full), N the model's parameters.

    .venv/bin/python benchmarks/stages.py [--scale 0.25] [--model smollm2-135m] [--engine fast]
        [--pack]

Last line: sampling_tps=<new> eval_tps=<new> train_pairs_per_s=<new>
sampling_speedup=<new/today> eval_speedup=<new/today> train_speedup=<new/today>
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peak import peaks

from rpo_bench import models
from rpo_bench.ablate import config as ablate_config
from rpo_bench.ablate import stages
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import REPO_ROOT
from rpo_bench.rollout.settings import engine as engine_of

GRID = REPO_ROOT / "ablations" / "cpu_full.yaml"
TODAY = "fast"  # the engine of today's path


@dataclass
class Measured:
    seconds: float
    tokens: int  # generated (sampling, evaluation) or the plain workload (training)
    flops: float  # model FLOPs of the work done
    dtype: str  # of the matmuls: the peak it is compared with
    pairs: int = 0  # training: pairs trained (all cells, all epochs)


def _reply_tokens(tokenizer: Any, texts: list[str]) -> int:
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def _context(root: Path) -> stages.Context:
    """A fresh context: its engines are built (and timed) by the stage that uses them."""
    return stages.Context(root)


def sampling(root: Path, path: str, cfg: Any, conversations: Path, model: str, engine: str,
             tokenizer: Any, n_params: int) -> tuple[Measured, Path]:  # fmt: skip
    """One sampling pass (`stages.sample_responses`): cpu_full's settings, `engine`."""
    folder = root / path / "samples"
    folder.mkdir(parents=True)
    s = dataclasses.replace(cfg.sampling, engine=engine)
    judge = dataclasses.replace(cfg.judge, triggered="all")  # as the runner judges samples
    began = time.perf_counter()
    stages.sample_responses(folder, _context(root), conversations=conversations, model=model,
                            sampling=s, judge=judge)  # fmt: skip
    seconds = time.perf_counter() - began
    rows = read_jsonl(stages.SAMPLES.path(folder))
    tokens = _reply_tokens(tokenizer, [r["text"] for row in rows for r in row["responses"]])
    return Measured(seconds, tokens, 2 * n_params * tokens, engine_of(engine).dtype), folder


def evaluation(root: Path, path: str, cfg: Any, trained: Path, heldout: Path, engine: str,
               tokenizer: Any, n_params: int) -> Measured:  # fmt: skip
    """One held-out evaluation (`stages.evaluate_model`, task `heldout` alone) of `trained`."""
    folder = root / path / "eval"
    folder.mkdir(parents=True)
    e = dataclasses.replace(cfg.eval, tasks=("heldout",), engine=engine)
    began = time.perf_counter()
    stages.evaluate_model(folder, _context(root), model=trained, eval=e, heldout=heldout,
                          judge=None)  # fmt: skip
    seconds = time.perf_counter() - began
    rows = read_jsonl(folder / "samples_heldout.jsonl")
    tokens = _reply_tokens(tokenizer, [r["reply"] for r in rows])
    return Measured(seconds, tokens, 2 * n_params * tokens, engine_of(engine).dtype)


def pairs_of(root: Path, cfg: Any, samples: Path, strategy: str) -> Path:
    """The strategy's pairs at noise 0, seed 0 (untimed: no model runs)."""
    judged, pairs = root / "judged", root / "pairs"
    judged.mkdir()
    pairs.mkdir()
    ctx = _context(root)
    stages.judge_with_noise(judged, ctx, samples=samples, noise=0.0, seed=0, triggered=None)
    stages.build_pairs(pairs, ctx, judged=judged, strategy=strategy, pairs=cfg.pairs, seed=0)
    return stages.PAIRS.path(pairs)


def _plain_tokens(pairs: Path, tokenizer: Any, max_length: int) -> tuple[int, int]:
    """(pairs kept, non-pad tokens of the plain workload) of one epoch."""
    from rpo_bench.train.examples import read_pairs
    from rpo_bench.train.tokenize import tokenize_pairs

    encoded = tokenize_pairs(read_pairs(pairs), tokenizer, max_length).pairs
    tokens = sum(2 * len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in encoded)
    return len(encoded), tokens


def padding(pairs: Path, tokenizer: Any, cfg: Any, pack: bool) -> float:
    """Share of the training rows' cells that are padding, in the trainer's batches."""
    from rpo_bench.train.batches import make_batches
    from rpo_bench.train.examples import read_pairs
    from rpo_bench.train.tokenize import tokenize_pairs

    encoded = tokenize_pairs(read_pairs(pairs), tokenizer, cfg.max_length).pairs
    batches = make_batches(encoded, cfg.batch_size, tokenizer.pad_token_id, cfg.seed,
                           cfg.share_prompt, None, pack)  # fmt: skip
    cells = sum(b.input_ids.numel() for b in batches)
    return 1 - sum(b.tokens for b in batches) / cells


def training(root: Path, cfg: Any, pairs: Path, cells: list[str], model: str, cached: bool,
             tokenizer: Any, n_params: int, pack: bool = False
             ) -> tuple[Measured, Path]:  # fmt: skip
    """The cells that share `pairs`, one after the other (`train()`, as `train_model` calls
    it), with or without a reference cache (empty at the start) and packing; returns the
    first cell's folder."""
    from rpo_bench.train import TrainConfig, train
    from rpo_bench.train.trainer import _bf16

    path = "new" if cached else "today"
    cache = root / path / "reference"
    folders, flops, trained, tokens, seconds = [], 0.0, 0, 0, 0.0
    bf16 = False
    for strategy in cells:
        settings = ablate_config.trainer_keys(cfg.train_settings(strategy))
        out = root / path / "train" / strategy
        settings.update(model=models.resolve(model), out=str(out), seed=0)
        if cached:
            settings["reference_cache"] = str(cache)
        train_cfg = TrainConfig.from_dict({**settings, "pack": pack})
        kept, plain = _plain_tokens(pairs, tokenizer, train_cfg.max_length)
        before = len(list(cache.glob("*.safetensors")))
        began = time.perf_counter()
        train(pairs, train_cfg, quiet=True)
        seconds += time.perf_counter() - began
        computed = not cached or len(list(cache.glob("*.safetensors"))) > before
        per_token = 4 if train_cfg.lora is not None else 6  # training; a reference pass: 2
        flops += n_params * plain * ((2 if computed else 0) + per_token * train_cfg.epochs)
        tokens += plain * train_cfg.epochs
        trained += kept * train_cfg.epochs
        bf16 = _bf16(train_cfg)
        folders.append(out)
    dtype = "bfloat16" if bf16 else "float32"
    return Measured(seconds, tokens, flops, dtype, trained), folders[0]


def cells_sharing_pairs(cfg: Any) -> tuple[str, list[str]]:
    """(pair strategy, the grid strategies that train on its pairs): the largest group."""
    groups: dict[str, list[str]] = defaultdict(list)
    for strategy in cfg.grid.strategy:
        groups[cfg.pair_strategy(strategy)].append(strategy)
    return max(groups.items(), key=lambda item: len(item[1]))


def scaled(cfg: Any, scale: float) -> Any:
    """cpu_full with `scale` times its training and held-out conversations (at least 1)."""
    d = cfg.data
    data = dataclasses.replace(
        d,
        n_conversations=max(1, round(d.n_conversations * scale)),
        heldout_conversations=max(1, round(d.heldout_conversations * scale)),
    )
    return dataclasses.replace(cfg, data=data)


def conversations(root: Path, cfg: Any, split: str) -> Path:
    """A split's conversations (`stages.make_conversations`, untimed)."""
    folder = root / "conversations" / split
    n = cfg.data.n_conversations if split == "train" else cfg.data.heldout_conversations
    folder.mkdir(parents=True)
    stages.make_conversations(folder, _context(root), data=cfg.data, split=split, n=n,
                              file_sha256=None)  # fmt: skip
    return folder


def main() -> None:
    from rpo_bench.train import TrainConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="share of cpu_full's sizes")
    parser.add_argument("--model", default=models.DEFAULT_MODEL, help="embedded name or folder")
    parser.add_argument("--engine", default="fast", help="the new path's rollout engine")
    parser.add_argument("--pack", action="store_true", help="the new path packs pairs in rows")
    args = parser.parse_args()
    if args.scale <= 0:
        parser.error("--scale must be > 0")
    engine_of(args.engine)  # an unknown engine fails here, before anything runs
    cfg = scaled(ablate_config.load(GRID), args.scale)
    loaded = models.load(args.model)
    tokenizer, n_params = loaded.tokenizer, sum(p.numel() for p in loaded.model.parameters())
    del loaded
    peak = peaks()
    strategy, cells = cells_sharing_pairs(cfg)
    print(f"grid {GRID.name} x {args.scale:g}: {cfg.data.n_conversations} training and "
          f"{cfg.data.heldout_conversations} held-out conversations, model {args.model} "
          f"({n_params / 1e6:.0f}M parameters), cells {', '.join(cells)} on {strategy}'s "
          f"pairs; new path: engine {args.engine}, reference cache"
          f"{', packing' if args.pack else ''}; "
          + ", ".join(f"matmul peak {k}: {v:.0f} GFLOP/s" for k, v in peak.items()))  # fmt: skip
    engines = {"today": TODAY, "new": args.engine}
    results: dict[tuple[str, str], Measured] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_convs, heldout = (conversations(root, cfg, split) for split in ("train", "heldout"))
        samples = {}
        for path, engine in engines.items():
            results["sampling", path], samples[path] = sampling(
                root, path, cfg, train_convs, args.model, engine, tokenizer, n_params
            )
        # both paths train on today's pairs and evaluate the first cell of today's training
        pairs = pairs_of(root, cfg, samples["today"], strategy)
        if not read_jsonl(pairs):
            raise SystemExit(f"{strategy} built no pairs at --scale {args.scale:g}: try more")
        settings = ablate_config.trainer_keys(cfg.train_settings(cells[0]))
        layout = TrainConfig.from_dict({**settings, "model": args.model, "out": str(root)})
        print(f"padding in the training batches: "
              f"{padding(pairs, tokenizer, layout, False):.1%} one pair per row, "
              f"{padding(pairs, tokenizer, layout, True):.1%} packed")  # fmt: skip
        trained = {}
        for path in engines:
            new = path == "new"
            results["train", path], trained[path] = training(
                root, cfg, pairs, cells, args.model, new, tokenizer, n_params, new and args.pack
            )
        for path, engine in engines.items():
            results["eval", path] = evaluation(
                root, path, cfg, trained["today"], heldout, engine, tokenizer, n_params
            )
    report(results, peak)


def report(results: dict[tuple[str, str], Measured], peak: dict[str, float]) -> None:
    print("| stage | path | seconds | tokens | tokens/s | pairs/s | share of peak |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (stage, path), m in results.items():
        pairs = f"{m.pairs / m.seconds:.2f}" if m.pairs else "-"
        share = m.flops / m.seconds / 1e9 / peak[m.dtype]
        print(f"| {stage} | {path} | {m.seconds:.1f} | {m.tokens} | {m.tokens / m.seconds:.1f} "
              f"| {pairs} | {share:.1%} ({m.dtype}) |")  # fmt: skip

    def rate(stage: str, path: str) -> float:
        m = results[stage, path]
        return (m.pairs if stage == "train" else m.tokens) / m.seconds

    def speedup(stage: str) -> float:
        return rate(stage, "new") / rate(stage, "today")

    print(f"sampling_tps={rate('sampling', 'new'):.1f} eval_tps={rate('eval', 'new'):.1f} "
          f"train_pairs_per_s={rate('train', 'new'):.3f} "
          f"sampling_speedup={speedup('sampling'):.2f} eval_speedup={speedup('eval'):.2f} "
          f"train_speedup={speedup('train'):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
