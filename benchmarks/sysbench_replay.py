"""Replay SysBench's released GPT-4o judge labels and compare with the paper's CSR/ISR/SSR.

Usage: RPO_BENCH_DATA=../shared/data .venv/bin/python benchmarks/sysbench_replay.py
Prints a markdown table, one row per label file in $RPO_BENCH_DATA/sysbench/judge_labels/.
"""

from __future__ import annotations

import sys

from rpo_bench.evaluate.sysbench import PUBLISHED, load_labels, load_sessions, score
from rpo_bench.paths import sysbench_file


def table() -> str:
    """The markdown table (raises FileNotFoundError when the SysBench data is absent)."""
    sessions = load_sessions(sysbench_file("sysbench_eval.jsonl"))
    label_dir = sysbench_file("judge_labels")
    lines = [
        "| model | CSR | ISR | SSR | CSR 95% CI | paper CSR / ISR / SSR | reproduced |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for path in sorted(label_dir.glob("*.jsonl")):
        m = score(load_labels(path), sessions, ndigits=None)
        ours = tuple(round(m[k], 1) for k in ("csr", "isr", "ssr"))
        paper = PUBLISHED.get(path.stem)
        if paper is None:
            published, ok = "-", "-"
        else:
            published = " / ".join(f"{x:.1f}" for x in paper)
            close = all(abs(a - b) <= 0.1 + 1e-9 for a, b in zip(ours, paper, strict=True))
            ok = "yes" if close else "NO"
        lo, hi = m["ci95"]["csr"]
        lines.append(
            f"| {path.stem} | {ours[0]:.1f} | {ours[1]:.1f} | {ours[2]:.1f} "
            f"| {lo:.1f}-{hi:.1f} | {published} | {ok} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        print(table())
    except (ValueError, FileNotFoundError) as err:
        print(f"sysbench_replay: error: {err}", file=sys.stderr)
        sys.exit(2)
