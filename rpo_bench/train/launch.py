"""Run `train` from the command line, in one process or several.

    rpo-bench train --pairs pairs.jsonl --model smollm2-135m --out runs/x [--config F] [--resume]

`--processes N` relaunches the same command in N processes (torchrun on CPU, accelerate's
launcher on GPUs); each runs `trainer.train` on its share of every global batch. By hand:
`accelerate launch --config_file configs/accelerate/ddp.yaml -m rpo_bench.cli train ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from rpo_bench.files import write_atomic
from rpo_bench.train.config import TrainConfig
from rpo_bench.train.trainer import TrainResult, train
from rpo_bench.train.unpaired import file_kind


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
        file_kind(args.pairs)  # an empty file fails here, once, not in every process
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
    """`train` on its own (also the entry for `accelerate launch -m rpo_bench.train.launch`)."""
    parser = argparse.ArgumentParser(prog="rpo-bench")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(argv if argv is not None else sys.argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    main()
