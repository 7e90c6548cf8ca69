"""Stage outputs stored under keys derived from their inputs, written atomically.

A stage's folder is `<root>/<stage>/<key>`, where key hashes the stage's config slice
and its upstream keys. Work happens in `<key>.partial` and is renamed into place when
the stage finishes, so a folder that exists is complete. A rerun skips finished
stages; with `resume` a partial folder is kept, so a stage that checkpoints (training)
continues from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rpo_bench.files import write_atomic

INPUTS = "inputs.json"
TIMING = "timing.json"


def key_of(stage: str, inputs: dict[str, Any]) -> str:
    """A short stable hash of the stage name and its inputs."""
    text = json.dumps({"stage": stage, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Store:
    def __init__(self, root: str | Path, resume: bool = False) -> None:
        self.root, self.resume = Path(root), resume
        self.computed: list[str] = []  # stages run (not reused) by this process, in order

    def folder(self, stage: str, inputs: dict[str, Any]) -> Path:
        return self.root / stage / key_of(stage, inputs)

    def done(self, stage: str, inputs: dict[str, Any]) -> bool:
        return self.folder(stage, inputs).is_dir()

    def run(self, stage: str, inputs: dict[str, Any], work: Callable[[Path], None]) -> Path:
        """The stage's folder; `work(partial_folder)` fills it unless it is already done."""
        final = self.folder(stage, inputs)
        if final.is_dir():
            return final
        partial = final.with_name(final.name + ".partial")
        if partial.exists() and not self.resume:
            shutil.rmtree(partial)
        partial.mkdir(parents=True, exist_ok=True)
        write_atomic(partial / INPUTS, json.dumps(inputs, indent=2, sort_keys=True, default=str))
        started = time.time()
        work(partial)
        write_atomic(partial / TIMING, json.dumps({"seconds": round(time.time() - started, 1)}))
        partial.rename(final)
        self.computed.append(f"{stage}/{final.name}")
        return final

    @staticmethod
    def seconds(folder: Path) -> float:
        path = folder / TIMING
        return json.loads(path.read_text())["seconds"] if path.exists() else 0.0
