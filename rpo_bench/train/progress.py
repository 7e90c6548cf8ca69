"""Run logs: a rich progress bar on the console, a JSONL file, TensorBoard when installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rpo_bench.jsonl import read_jsonl, write_jsonl
from rpo_bench.outputs import TRAIN_LOG


class RunLog:
    """Per-step metrics to `<out>/log.jsonl` (rewritten atomically) and the console."""

    def __init__(self, out: Path, total_steps: int, start_step: int, enabled: bool, quiet: bool):
        self.path = out / TRAIN_LOG if enabled else None
        self.enabled = enabled
        # on resume, keep the rows of the steps already done
        old = read_jsonl(self.path) if enabled and start_step and self.path.exists() else []
        self.rows: list[dict[str, Any]] = [r for r in old if r.get("step", 0) <= start_step]
        self.progress = self.task = self.board = None
        if not enabled:
            return
        if not quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
            )
            self.task = self.progress.add_task(
                "train", total=total_steps, completed=start_step, info=""
            )
            self.progress.start()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(str(out / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.board = None

    def log(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.rows.append(row)
        write_jsonl(self.path, self.rows)
        if self.board is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, int | float):
                    self.board.add_scalar(key, value, row["step"])
        if self.progress is not None and "loss" in row:  # a validation row has val_ keys only
            info = f"loss {row['loss']:.4f}"
            if "rewards/margins" in row:  # SFT has no rewards; KTO no accuracy
                info += f" margin {row['rewards/margins']:+.3f}"
            if "rewards/accuracies" in row:
                info += f" acc {row['rewards/accuracies']:.2f}"
            info += f" {row['tokens_per_s']:.0f} tok/s"
            self.progress.update(self.task, completed=row["step"], info=info)

    def message(self, text: str) -> None:
        if self.enabled:
            (self.progress.console.print if self.progress else print)(text)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.board is not None:
            self.board.close()
