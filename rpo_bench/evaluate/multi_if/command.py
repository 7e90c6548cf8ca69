"""`rpo-bench multi-if-score`: Multi-IF rows with replies scored, printed as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rpo_bench.evaluate.multi_if.metrics import score_file, score_rows


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `multi-if-score --input FILE` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "multi-if-score",
        help="score Multi-IF replies (JSONL or CSV rows with a responses field)",
        description=score_rows.__doc__,
    )
    p.add_argument("--input", required=True, help="Multi-IF rows plus responses (JSONL or CSV)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for ci95")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_cli)
    return p


def _cli(args: argparse.Namespace) -> None:
    result = score_file(args.input, resamples=args.resamples, seed=args.seed)
    print(json.dumps(result, ensure_ascii=False, indent=2))
