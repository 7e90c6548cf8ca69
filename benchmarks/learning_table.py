"""Did the models learn, by training budget? One row per trained cell of an ablation's
results.json: its epochs, preference accuracy and mean implicit-reward margin on its
training pairs, its validation pairs and the gold set (95% intervals), the training loss
against its null, and the primary endpoint's score of its strategy at that setting (the
mean over its seeds, with its hierarchical bootstrap interval).

    .venv/bin/python benchmarks/learning_table.py runs/reports/dose_cpu/results.json
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _accuracy(s: dict[str, Any] | None) -> str:
    if not s:
        return "-"
    lo, hi = s["accuracy_ci95"]
    return f"{s['accuracy']:.2f} [{lo:.2f}, {hi:.2f}]"


def _margin(s: dict[str, Any] | None) -> str:
    if not s:
        return "-"
    lo, hi = s["margin_ci95"]
    return f"{s['margin']:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def rows(results: dict[str, Any]) -> list[str]:
    """The table's markdown lines, cells in results.json's order."""
    scores = {(v["model"], v["strategy"], v["noise"]): v for v in results["analysis"]["levels"]
              if v["task"] == results["analysis"]["settings"]["primary"]["task"]}  # fmt: skip
    head = ["strategy", "noise p", "seed", "epochs", "train accuracy", "validation accuracy",
            "gold accuracy", "train margin", "validation margin", "gold margin",
            "loss (null)", "held-out score"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in results["cells"]:
        points = cell["train"].get("learning") or [{}]
        end = points[-1]
        train = end.get("train")
        loss = f"{train['loss']:.3f} ({train['null_loss']:.3f})" if train else "-"
        group = cell["model"] + "".join(
            f", {k}={cell[k]}" for k in ("min_margin", "margin_mode", "epochs") if k in cell
        )
        level = scores.get((group, cell["strategy"], cell["noise"]))
        score = "-"
        if level:
            lo, hi = level["ci95_points"]
            score = f"{level['mean_points']:.1f} [{lo:.1f}, {hi:.1f}]"
        lines.append("| " + " | ".join([
            cell["strategy"], f"{cell['noise']:g}", str(cell["seed"]),
            f"{end.get('epochs', cell.get('epochs', '-')):g}" if end else "-",
            *(_accuracy(end.get(s)) for s in ("train", "validation", "gold")),
            *(_margin(end.get(s)) for s in ("train", "validation", "gold")), loss, score,
        ]) + " |")  # fmt: skip
    base = [v for v in results["analysis"]["levels"] if v["strategy"] == "base"
            and v["task"] == results["analysis"]["settings"]["primary"]["task"]]  # fmt: skip
    for v in base[:1]:  # one evaluation, listed under every group of its model
        lo, hi = v["ci95_points"]
        lines.append(f"\nbase ({v['model']}): held-out score {v['mean_points']:.1f} "
                     f"[{lo:.1f}, {hi:.1f}]")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    args = parser.parse_args()
    with open(args.results) as f:
        print("\n".join(rows(json.load(f))))


if __name__ == "__main__":
    main()
