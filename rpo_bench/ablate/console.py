"""What an ablation shows in the terminal (rich's grid and stage bars, and the trainer's
one-line summaries) and what it keeps in `<work>/ablate.log` (all of that, with times, plus
every library log record and warning, which never reach the terminal)."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

LOG_NAME = "ablate.log"
log = logging.getLogger("rpo_bench.ablate")


def log_to_file(work: Path) -> Path:
    """Send the root logger, transformers' logger and Python warnings to `<work>/ablate.log`
    (appended: a resumed run continues the same file) and nowhere else."""
    from transformers.utils import logging as hf_logging

    work.mkdir(parents=True, exist_ok=True)
    path = work / LOG_NAME
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):  # a library's stderr handler would print above the bars
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # transformers prints through its own stderr handler; let its records reach the file only
    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()  # per-load bars would scroll above the grid at every stage
    logging.captureWarnings(True)
    warnings.simplefilter("default")  # each distinct warning once, into the file
    return path


class _Lines(io.TextIOBase):
    """A text stream that hands each complete line to `say`."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.buffer_ = say, ""

    def write(self, text: str) -> int:
        self.buffer_ += text
        *lines, self.buffer_ = self.buffer_.split("\n")
        for line in lines:
            if line.strip():
                self.say(line)
        return len(text)

    def flush(self) -> None:
        if self.buffer_.strip():
            self.say(self.buffer_)
        self.buffer_ = ""


@contextlib.contextmanager
def _printing_to(say: Callable[[str], None]) -> Iterator[None]:
    """Within the block, each complete line printed to stdout goes to `say`."""
    stream = _Lines(say)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        stream.flush()


class Progress:
    """One rich display: the grid's cells (with ETA) and the stage running now; every event
    is also logged."""

    def __init__(self, cells: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        # The console keeps the terminal it starts on: while the bars are live, sys.stdout is
        # rich's proxy, and inside `printing` it is redirected here, which would loop.
        self.bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stdout),
        )
        self.grid = self.bar.add_task("grid", total=cells)
        self.current = self.bar.add_task("stage: -", total=None)
        self.started = False
        self.stage_started: tuple[str, float] | None = None

    def cell(self, name: str) -> None:
        self._stage_done()
        if self.started:
            self.bar.advance(self.grid)
        self.started = True
        self.bar.update(self.grid, description=f"grid: {name}")
        log.info("cell %s", name)

    def stage(self, label: str) -> None:
        self._stage_done()
        self.stage_started = (label, time.perf_counter())
        self.bar.update(self.current, description=f"stage: {label}")
        log.info("stage %s started", label)

    @contextlib.contextmanager
    def printing(self) -> Iterator[None]:
        """Each line a stage prints to stdout goes above the bars and into the log."""

        def line(text: str) -> None:
            self.bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
            log.info("%s", text)

        with _printing_to(line):
            yield

    def _stage_done(self) -> None:
        if self.stage_started:
            label, began = self.stage_started
            log.info("stage %s done in %.1f s", label, time.perf_counter() - began)
            self.stage_started = None

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._stage_done()
        if exc[0] is None:
            self.bar.update(self.grid, completed=self.bar.tasks[self.grid].total)
        else:
            log.error("stopped: %s", exc[1] if exc[1] is not None else exc[0])
        self.bar.__exit__(*exc)


class JobLines:
    """A worker's progress as plain prefixed lines (workers share one terminal, so no bars),
    each also logged; the same interface as Progress."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.out = prefix, sys.stdout  # kept: `printing` redirects sys.stdout

    def cell(self, name: str) -> None:
        self._say(f"cell {name}")

    def stage(self, label: str) -> None:
        self._say(f"stage {label}")

    def printing(self) -> contextlib.AbstractContextManager[None]:
        return _printing_to(self._say)

    def _say(self, text: str) -> None:
        print(f"{self.prefix} {text}", file=self.out, flush=True)
        log.info("%s %s", self.prefix, text)
