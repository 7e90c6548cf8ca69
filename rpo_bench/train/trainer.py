"""Set up a run (model, LoRA, data, reference log-probs, resume), run the loop, save the model.

    rpo-bench train --pairs pairs.jsonl --model smollm2-135m --out runs/x [--config F] [--resume]

Multi-GPU: `accelerate launch --config_file configs/accelerate/ddp.yaml -m rpo_bench.cli train ...`.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rpo_bench import models
from rpo_bench.files import atomic_folder, write_atomic
from rpo_bench.train import checkpoint
from rpo_bench.train.config import TrainConfig, example_kind
from rpo_bench.train.data import Batch, make_batches, read_pairs, schedule, tokenize_pairs
from rpo_bench.train.logps import SequenceScorer, causal_lm
from rpo_bench.train.loop import Run, train_loop
from rpo_bench.train.progress import RunLog
from rpo_bench.train.unpaired import file_kind, mismatched, read_single, tokenize_single

# Settings that may change between a run and its resumption.
RESUMABLE_CHANGES = {"out", "max_steps", "save_every", "log_every"}


@dataclass
class TrainResult:
    out: Path
    final: Path | None
    steps: int
    pairs: int
    truncated: int  # prompts shortened to fit max_length
    dropped: int  # pairs whose reply alone exceeds max_length
    seconds: dict[str, float] = field(default_factory=dict)  # tokenize, reference, train
    tokens: int = 0  # non-pad tokens of one epoch (chosen + rejected sequences)
    log: list[dict[str, Any]] = field(default_factory=list)


def _bf16(cfg: TrainConfig) -> bool:
    if cfg.bf16 is not None:
        return cfg.bf16
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    from rpo_bench.cpu import native_bf16

    return native_bf16()


def _sharded(acc: Any) -> bool:
    from accelerate.utils import DistributedType

    return acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def _wrap_lora(model: Any, cfg: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = cfg.lora
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


@torch.no_grad()
def reference_logps(run_scorer: Any, batches: list[Batch], n_pairs: int, acc: Any) -> torch.Tensor:
    """Reference log-probs of every pair, once, in the training batches.

    Full fine-tuning: the model before any step. LoRA: the base with adapters disabled.
    """
    model = acc.unwrap_model(run_scorer).model
    ref = torch.zeros(n_pairs, 2)
    run_scorer.eval()
    context = model.disable_adapter() if hasattr(model, "disable_adapter") else torch.no_grad()
    with context:
        for batch in batches:
            with acc.autocast():
                logps = run_scorer(**batch.inputs(acc.device))
            ref[batch.index] = torch.stack(logps.float().cpu().chunk(2), dim=1)
    return ref


def _save_final(acc: Any, scorer: Any, tokenizer: Any, out: Path) -> Path | None:
    """`<out>/final`: full safetensors + tokenizer (LoRA merged), loadable by models.load."""
    acc.wait_for_everyone()
    model = acc.unwrap_model(scorer).model
    state = acc.get_state_dict(scorer) if _sharded(acc) else None  # every rank must call it
    if not acc.is_main_process:
        return None
    target = out / "final"
    with atomic_folder(target) as tmp:
        if state is not None:  # sharded: the gathered weights (a LoRA run saves its adapter)
            state = {k.removeprefix("model."): v for k, v in state.items()}
            model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        else:
            if hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return target


def _read_examples(path: str | Path, cfg: TrainConfig) -> list:
    """The file's examples, of the kind the loss trains on, validated (errors name
    file:line and field): read before any model is loaded or folder made."""
    kind, found = example_kind(cfg.loss), file_kind(path)
    if kind != found:
        raise ValueError(
            f"{path}: holds {found} examples, but loss {cfg.loss!r} trains on {kind} examples"
        )
    return read_pairs(path) if kind == "preference" else read_single(path, kind)


def _tokenized(rows: list, cfg: TrainConfig, tokenizer: Any):
    """(tokenized, fill): the examples tokenized, and what completes a batch's examples
    (KTO: their mismatched replies)."""
    kind = example_kind(cfg.loss)
    if kind == "preference":
        return tokenize_pairs(rows, tokenizer, cfg.max_length), None
    fill = functools.partial(mismatched, max_length=cfg.max_length) if kind == "kto" else None
    return tokenize_single(rows, tokenizer, cfg.max_length), fill


def _validation_split(examples: list, cfg: TrainConfig, path: str | Path) -> tuple[list, list]:
    """(training, validation) examples: a seeded `val_fraction` of them held out."""
    if not cfg.val_fraction:
        return examples, []
    n = round(len(examples) * cfg.val_fraction)
    if n < 1 or n >= len(examples):
        raise ValueError(
            f"{path}: val_fraction={cfg.val_fraction} of {len(examples)} examples leaves "
            f"{n} for validation and {len(examples) - n} for training; need at least 1 each"
        )
    chosen = set(random.Random(f"val:{cfg.seed}").sample(range(len(examples)), n))
    return (
        [e for k, e in enumerate(examples) if k not in chosen],
        [e for k, e in enumerate(examples) if k in chosen],
    )


def _check_resumable(state: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    # a key the checkpoint lacks is newer than it, and had its default then
    before = TrainConfig().to_dict() | state.get("config", {})
    now = cfg.to_dict()
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and before.get(k) != now[k])
    if changed:
        raise ValueError(
            f"cannot resume from {path}: config changed since the checkpoint ({', '.join(changed)})"
        )


def train(pairs: str | Path, cfg: TrainConfig, resume: bool = False, quiet: bool = False):
    """Train on a pairs file (preference pairs, or SFT/KTO examples for those losses); returns
    a TrainResult. Writes checkpoints, log.jsonl and final/."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    # accelerate keeps one process-wide state and refuses a second precision; an earlier
    # Accelerator in this process (lm-eval's HFLM, a previous train()) may have set another.
    # The partial state (the process group) is kept.
    rows = _read_examples(pairs, cfg)  # a bad file fails here, before anything is loaded
    AcceleratorState._reset_state()
    acc = Accelerator(mixed_precision="bf16" if _bf16(cfg) else "no")
    set_seed(cfg.seed)
    out = Path(cfg.out)
    clock = {"start": time.perf_counter()}

    loaded = models.load(cfg.model)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer, model = loaded.tokenizer, loaded.model
    tokenized, fill = _tokenized(rows, cfg, tokenizer)
    # the same global batches for any number of processes; each takes its share of every one
    # (equal step counts keep DDP/ZeRO-3 in lockstep)
    world = acc.num_processes
    trained, held_out = _validation_split(tokenized.pairs, cfg, pairs)
    steps_per_epoch, left_out = schedule(
        trained, cfg.batch_size, cfg.grad_accum, world, acc.process_index,
        tokenizer.pad_token_id, cfg.seed, cfg.share_prompt, fill, cfg.batch_order,
    )  # fmt: skip
    if not steps_per_epoch:
        raise ValueError(f"{pairs}: {len(rows)} pairs are too few for {world} processes")
    batches = [b for share in steps_per_epoch for b in share.micro]
    # every process scores the whole (small) validation set: no reduction needed
    validation = make_batches(held_out, cfg.batch_size, tokenizer.pad_token_id, cfg.seed,
                              cfg.share_prompt, fill)  # fmt: skip
    clock["tokenize"] = time.perf_counter()

    if cfg.lora is not None:
        model = _wrap_lora(model, cfg)
    if cfg.grad_checkpointing:
        causal_lm(model).gradient_checkpointing_enable({"use_reentrant": False})
    scorer = SequenceScorer(model)
    optimizer = torch.optim.AdamW(
        [p for p in scorer.parameters() if p.requires_grad],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    raw_optimizer = optimizer
    steps = len(steps_per_epoch) * cfg.epochs
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(steps * cfg.warmup_ratio), steps
    )
    scorer, optimizer = acc.prepare(scorer, optimizer)
    if cfg.loss == "sft":  # the SFT loss has no reference model
        ref = torch.zeros(len(rows), 2)
    else:
        ref = reference_logps(scorer, batches + validation, len(rows), acc)
    clock["reference"] = time.perf_counter()

    start, last = 0, None
    if resume and (last := checkpoint.latest(out)) is not None:
        if _sharded(acc):
            raise ValueError(
                "resume is not supported under FSDP/DeepSpeed (checkpoints are not saved)"
            )
        state = json.loads((last / "state.json").read_text())
        _check_resumable(state, cfg, last)
        start = checkpoint.load(last, acc.unwrap_model(scorer).model, raw_optimizer, scheduler)[
            "step"
        ]

    def save(step: int) -> Path | None:
        if _sharded(acc):  # sharded weights: only the final model is gathered and saved
            return None
        path = None
        if acc.is_main_process:
            extra = {"config": cfg.to_dict(), "pairs": len(rows)}
            model = acc.unwrap_model(scorer).model
            path = checkpoint.save(out, step, model, raw_optimizer, scheduler, extra)
        acc.wait_for_everyone()
        return path

    log = RunLog(out, steps, start, enabled=acc.is_main_process, quiet=quiet)
    glob = cfg.batch_size * cfg.grad_accum * world
    log.message(
        f"{len(rows)} examples ({example_kind(cfg.loss)}), global batch {glob} = "
        f"{cfg.batch_size} per process x {cfg.grad_accum} accumulation x {world} processes "
        f"({cfg.batch_order} order), {steps} steps, {tokenized.truncated} prompts truncated, "
        f"{tokenized.dropped} dropped (reply longer than max_length={cfg.max_length})"
        + (f", {left_out} left out (a last batch smaller than {world * cfg.grad_accum})"
           if left_out else "")
        + (f", {len(held_out)} held out for validation" if held_out else "")
    )  # fmt: skip
    try:
        run = Run(cfg, acc, scorer, optimizer, scheduler, steps_per_epoch, ref, log, save,
                  validation)  # fmt: skip
        reached = train_loop(run, start, last)
        clock["train"] = time.perf_counter()
        if reached > start:
            save(reached)
        final = _save_final(acc, scorer, tokenizer, out)
    finally:
        log.close()
    seconds = {
        "tokenize": clock["tokenize"] - clock["start"],
        "reference": clock["reference"] - clock["tokenize"],
        "train": clock["train"] - clock["reference"],
    }
    result = TrainResult(
        out, final, reached, len(rows), tokenized.truncated, tokenized.dropped, seconds,
        sum(b.tokens for b in batches), log.rows,
    )  # fmt: skip
    if acc.is_main_process:
        summary = {k: v for k, v in result.__dict__.items() if k != "log"}
        summary.update(out=str(out), final=str(final), config=cfg.to_dict())
        write_atomic(out / "train_summary.json", json.dumps(summary, indent=1) + "\n")
    return result


def launch(args: argparse.Namespace) -> list[str]:
    """The command that runs this `train` command in `args.processes` processes: torchrun
    (gloo, DDP) on CPU; accelerate's launcher on GPUs, with `--accelerate-config` (DDP, FSDP
    or ZeRO-3, configs/accelerate/)."""
    again = ["train", "--pairs", args.pairs]
    for flag, value in (("--model", args.model), ("--out", args.out), ("--config", args.config)):
        if value is not None:
            again += [flag, value]
    again += [flag for flag, on in (("--resume", args.resume), ("--quiet", args.quiet)) if on]
    n = str(args.processes)
    if args.accelerate_config or torch.cuda.is_available():
        config = ["--config_file", args.accelerate_config] if args.accelerate_config else []
        return [sys.executable, "-m", "accelerate.commands.launch", *config,
                "--num_processes", n, "-m", "rpo_bench.cli", *again]  # fmt: skip
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={n}", "-m", "rpo_bench.cli", *again]  # fmt: skip


def train_in_processes(
    pairs: str | Path,
    cfg: TrainConfig,
    processes: int,
    accelerate_config: str | None = None,
    resume: bool = False,
) -> str:
    """`train` in `processes` processes, as `rpo-bench train --processes N` runs it (the
    config written beside the run as train_config.yaml); returns what it printed. A failed
    run is a RuntimeError with its command and the end of its stderr."""
    out = Path(cfg.out)
    config = out / "train_config.yaml"  # JSON is YAML; tuples become lists
    keys = {k: v for k, v in cfg.to_dict().items() if k not in ("model", "out")}
    write_atomic(config, json.dumps(keys, indent=1))
    cmd = [sys.executable, "-m", "rpo_bench.cli", "train", "--pairs", str(pairs),
           "--model", cfg.model, "--out", str(out), "--config", str(config), "--quiet",
           "--processes", str(processes)]  # fmt: skip
    if accelerate_config:
        cmd += ["--accelerate-config", accelerate_config]
    if resume:
        cmd.append("--resume")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(
            f"training in {processes} processes failed (exit {done.returncode}): "
            f"{' '.join(cmd)}\n{done.stderr[-3000:]}"
        )
    return done.stdout.strip()


def _run(args: argparse.Namespace) -> TrainResult | None:
    if args.processes > 1 and "LOCAL_RANK" not in os.environ:  # not yet one of the processes
        env = dict(os.environ)
        if not (args.accelerate_config or torch.cuda.is_available()):
            env["ACCELERATE_USE_CPU"] = "1"  # else accelerate looks for GPUs
            env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.processes)))
        done = subprocess.run(launch(args), env=env)
        if done.returncode:
            sys.exit(done.returncode)
        return None
    overrides = {k: v for k, v in (("model", args.model), ("out", args.out)) if v is not None}
    cfg = (
        TrainConfig.from_yaml(args.config, **overrides)
        if args.config
        else TrainConfig.from_dict(overrides, "command line")
    )
    result = train(args.pairs, cfg, resume=args.resume, quiet=args.quiet)
    print(f"trained {result.steps} steps; model: {result.final}")
    return result


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `train` on an argparse subparsers object (func=handler)."""
    p = subparsers.add_parser(
        "train",
        help="RPO/DPO/IPO training on preference pairs, SFT/KTO on single responses (LoRA or full)",
        description="Train a model on pairs.jsonl; writes checkpoints, log.jsonl and <out>/final.",
    )
    p.add_argument(
        "--pairs",
        required=True,
        help="pairs JSONL (id, prompt, chosen, rejected, margin; or "
        "kind sft/kto rows: id, prompt, response, desirable)",
    )
    p.add_argument("--model", default=None, help="embedded name, folder or hub id (config: model)")
    p.add_argument("--out", default=None, help="run folder (config: out)")
    p.add_argument(
        "--config", default=None, help="YAML TrainConfig, e.g. configs/train/rpo_lora.yaml"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --out"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run in N processes: torchrun (gloo) on CPU, accelerate's launcher on GPUs; "
        "batch_size stays per process, so the global batch grows N times",
    )
    p.add_argument(
        "--accelerate-config",
        default=None,
        help="accelerate config for --processes on GPUs, e.g. configs/accelerate/fsdp.yaml",
    )
    p.set_defaults(func=_run)
    return p


def main(argv: list[str] | None = None) -> TrainResult:
    """`train` on its own (also the entry for `accelerate launch -m rpo_bench.train.trainer`)."""
    parser = argparse.ArgumentParser(prog="rpo-bench")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    main()
