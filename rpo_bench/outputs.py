"""Names of the files a step writes beside its main output: declared once, here, for the
step that writes them (train/, pairs/) and the ablation runner that reads them back. A leaf
module, so the runner can name them without importing torch or the constraint library."""

from __future__ import annotations

from pathlib import Path

TRAIN_FINAL = "final"  # the trained weights (LoRA merged) and tokenizer, loadable by models.load
TRAIN_LOG = "log.jsonl"  # per-step loss and reward margins
TRAIN_SUMMARY = "train_summary.json"  # seconds and steps
TRAIN_LEARNING = "learning.json"  # preference accuracy, margin, loss vs its null, per epoch


def stats_path(out: str | Path) -> Path:
    """`pairs.jsonl` -> `pairs.stats.json`, next to it: an example set's statistics."""
    out = Path(out)
    return out.with_name(f"{out.name.removesuffix('.jsonl')}.stats.json")
