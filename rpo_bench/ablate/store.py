"""Stage outputs stored under keys derived from their inputs, written atomically.

A stage's folder is `<root>/<stage>/<key>`, where key hashes the stage's config slice
and its upstream keys. Work happens in `<key>.partial` and is renamed into place when
the stage finishes, so a folder that exists is complete. A rerun skips finished
stages; with `resume` a partial folder is kept, so a stage that checkpoints (training)
continues from its last checkpoint.

Each finished folder records the fingerprint of the code that computed it (`code.json`,
from `ablate.code`). A folder computed by other code is stale: it is set aside as
`<key>.stale` and computed again, unless `reuse_stale` reuses it (and lists it in
`stale`). One process at a time computes a stage: a lock per stage
(`<root>/.locks/<stage>-<key>.lock`, an OS file lock that is released when its holder dies,
even by kill -9, so a dead run's lock is simply taken over) makes another process wait for
it and then reuse its result, or with `wait=False` stop with `StageBusy` naming the holder
(pid and host).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from rpo_bench import faults
from rpo_bench.ablate.code import STAGE_CODE, code_version
from rpo_bench.files import write_atomic

INPUTS = "inputs.json"
TIMING = "timing.json"
CODE = "code.json"


class StageBusy(RuntimeError):
    """Another process is computing this stage (and the store was told not to wait)."""


def stage_code(stage: str) -> str:
    """The pipeline stages' code fingerprints; a stage the pipeline does not list has none."""
    return code_version(stage) if stage in STAGE_CODE else "unlisted"


def key_of(stage: str, inputs: dict[str, Any]) -> str:
    """A short stable hash of the stage name and its inputs."""
    text = json.dumps({"stage": stage, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Store:
    def __init__(
        self,
        root: str | Path,
        resume: bool = False,
        *,
        wait: bool = True,
        reuse_stale: bool = False,
        code: Callable[[str], str] = stage_code,
    ) -> None:
        self.root, self.resume, self.wait, self.reuse_stale = Path(root), resume, wait, reuse_stale
        self.code = code
        self.computed: list[str] = []  # stages run (not reused) by this process, in order
        self.stale: list[str] = []  # stages reused although other code computed them
        # planning: `run` computes nothing and lists here the folders it would compute
        self.planning = False
        self.planned: list[Path] = []
        self.seen: set[Path] = set()  # every stage folder planning met

    def folder(self, stage: str, inputs: dict[str, Any]) -> Path:
        return self.root / stage / key_of(stage, inputs)

    def done(self, stage: str, inputs: dict[str, Any]) -> bool:
        return self._reusable(stage, self.folder(stage, inputs))

    def _reusable(self, stage: str, final: Path) -> bool:
        if not final.is_dir():
            return False
        path = final / CODE
        made_by = json.loads(path.read_text())["code"] if path.exists() else None
        if made_by == self.code(stage):
            return True
        if self.reuse_stale:
            name = f"{stage}/{final.name}"
            if name not in self.stale:
                self.stale.append(name)
            return True
        return False

    def run(self, stage: str, inputs: dict[str, Any], work: Callable[[Path], None]) -> Path:
        """The stage's folder; `work(partial_folder)` fills it unless it is already done."""
        final = self.folder(stage, inputs)
        if self.planning:
            self.seen.add(final)
        if self._reusable(stage, final):
            return final
        if self.planning:
            if final not in self.planned:
                self.planned.append(final)
            return final
        with self._lock(final):
            if self._reusable(stage, final):  # another process finished it while we waited
                return final
            if final.is_dir():  # computed by other code: kept aside, not reused
                stale = final.with_name(final.name + ".stale")
                shutil.rmtree(stale, ignore_errors=True)
                final.rename(stale)
            partial = final.with_name(final.name + ".partial")
            if partial.exists() and not self.resume:
                shutil.rmtree(partial)
            partial.mkdir(parents=True, exist_ok=True)
            text = json.dumps(inputs, indent=2, sort_keys=True, default=str)
            write_atomic(partial / INPUTS, text)
            started = time.time()
            work(partial)
            faults.reach(f"stage:{stage}")
            seconds = round(time.time() - started, 1)
            write_atomic(partial / TIMING, json.dumps({"seconds": seconds}))
            write_atomic(partial / CODE, json.dumps({"code": self.code(stage)}))
            partial.rename(final)
        self.computed.append(f"{stage}/{final.name}")
        return final

    @contextmanager
    def _lock(self, final: Path) -> Iterator[None]:
        final.parent.mkdir(parents=True, exist_ok=True)
        locks = self.root / ".locks"  # beside the stages, so stage folders hold results only
        locks.mkdir(exist_ok=True)
        lock = FileLock(locks / f"{final.parent.name}-{final.name}.lock")
        owner = locks / f"{final.parent.name}-{final.name}.owner"
        try:
            lock.acquire(timeout=-1 if self.wait else 0)
        except Timeout:
            holder = owner.read_text().strip() if owner.exists() else "another process"
            raise StageBusy(
                f"stage {final.parent.name}/{final.name} is being computed by {holder}; "
                "rerun when it is done, or without --no-wait to wait for it and reuse it"
            ) from None
        try:
            write_atomic(owner, f"pid {os.getpid()} on {socket.gethostname()}\n")
            yield
        finally:
            owner.unlink(missing_ok=True)
            lock.release()

    def measured(self, stage: str) -> list[float]:
        """The seconds each finished folder of this stage took, as its timing.json says."""
        folders = (self.root / stage).glob(f"*/{TIMING}") if self.root.is_dir() else ()
        return [self.seconds(t.parent) for t in folders if "." not in t.parent.name]

    @staticmethod
    def seconds(folder: Path) -> float:
        path = folder / TIMING
        return json.loads(path.read_text())["seconds"] if path.exists() else 0.0
