"""`rpo-bench sysbench-score`: one model's SysBench judge labels scored, printed as JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rpo_bench.evaluate.sysbench.data import load_labels, load_sessions
from rpo_bench.evaluate.sysbench.metrics import score
from rpo_bench.paths import sysbench_file


def _run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.data) if args.data else sysbench_file("sysbench_eval.jsonl")
    result = score(
        load_labels(args.labels), load_sessions(data), n_boot=args.bootstrap, seed=args.seed
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return result


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `sysbench-score` on an argparse subparsers object (func=handler)."""
    p = subparsers.add_parser(
        "sysbench-score",
        help="SysBench CSR/ISR/SSR from judge labels",
        description="Score one model's SysBench judge labels; prints the metrics as JSON.",
    )
    p.add_argument("--labels", required=True, help="judge labels JSONL (judge_labels schema)")
    p.add_argument(
        "--data",
        default=None,
        help="sysbench_eval.jsonl (default: $RPO_BENCH_DATA/sysbench/sysbench_eval.jsonl)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for ci95")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_run)
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """`sysbench-score` on its own: parse argv, print the JSON and return it; errors raise."""
    parser = argparse.ArgumentParser(prog="rpo-bench")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sysbench-score", *(argv if argv is not None else [])])
    return args.func(args)
