"""The metric differences between two ablation reports: your run against the committed one.

For every (model, task, strategy, noise) both reports hold, it prints each one's mean score
in points (the per-prompt score averaged over seeds, as the report's tables show it) and
B - A; the untrained model's metrics too. Rows only one report has are listed after.

    .venv/bin/python benchmarks/compare_reports.py reports/cpu runs/reports/cpu
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def scores(results: dict[str, Any]) -> dict[tuple[str, ...], float]:
    """(model, task, strategy|noise) -> mean score in points; (model, task, "base", metric)
    -> the untrained model's metric in points."""
    found = {}
    for model, tasks in results["summary"].items():
        for task, rows in tasks.items():
            for row, stats in rows.items():
                if "score" in stats:
                    found[(model, task, row)] = stats["score"]["mean_points"]
    for model, tasks in results["base"].items():
        for task, evaluation in tasks.items():
            for metric, value in evaluation["metrics"].items():
                if isinstance(value, int | float):
                    found[(model, task, "base", metric)] = 100 * value
    return found


def read(folder: str) -> dict[str, Any]:
    path = Path(folder) / "results.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        print(f"compare_reports: error: {path}: {err}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", help="a report folder (the reference, e.g. reports/cpu)")
    parser.add_argument("b", help="another report folder (e.g. runs/reports/cpu)")
    args = parser.parse_args()
    a, b = scores(read(args.a)), scores(read(args.b))
    print(f"A = {args.a}\nB = {args.b}\n")
    print(f"{'model':<16} {'task':<14} {'row':<34} {'A':>7} {'B':>7} {'B - A':>7}")
    for key in sorted(a.keys() & b.keys()):
        model, task, *row = key
        print(f"{model:<16} {task:<14} {' '.join(row):<34} {a[key]:7.2f} {b[key]:7.2f} "
              f"{b[key] - a[key]:+7.2f}")  # fmt: skip
    for name, only in (("A", a.keys() - b.keys()), ("B", b.keys() - a.keys())):
        for key in sorted(only):
            print(f"only in {name}: {' '.join(key)}")
    same = [k for k in a.keys() & b.keys() if abs(a[k] - b[k]) < 1e-9]
    print(f"\n{len(same)} of {len(a.keys() & b.keys())} shared rows equal")


if __name__ == "__main__":
    main()
