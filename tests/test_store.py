"""The stage store across code changes and processes: stale results are never reused
silently; one process computes a stage while another waits for it or stops; a killed
holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rpo_bench.ablate.code import STAGE_CODE, code_version
from rpo_bench.ablate.store import StageBusy, Store

# A child process that computes stage "s" {"p": 1} under `root`, announcing itself in
# <root>/started and taking `seconds` to do it.
CHILD = """
import sys, time
from pathlib import Path
from rpo_bench.ablate.store import Store
root, seconds = Path(sys.argv[1]), float(sys.argv[2])
def work(folder):
    (root / "started").write_text("x")
    time.sleep(seconds)
    (folder / "out.txt").write_text("child")
Store(root, code=lambda stage: "v1").run("s", {"p": 1}, work)
"""


def _child(root, seconds):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(seconds)],
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 60
    while not (root / "started").exists():
        assert proc.poll() is None and time.time() < deadline, "the child never started"
        time.sleep(0.02)
    return proc


def _write(text):
    return lambda folder: (folder / "out.txt").write_text(text)


def test_a_code_change_makes_a_stage_stale(tmp_path):
    first = Store(tmp_path, code=lambda stage: "v1").run("s", {"p": 1}, _write("v1"))
    calls = []

    def again(folder):
        calls.append(1)
        (folder / "out.txt").write_text("v2")

    reuse = Store(tmp_path, code=lambda stage: "v2", reuse_stale=True)
    assert reuse.run("s", {"p": 1}, again) == first and not calls
    assert reuse.stale == [f"s/{first.name}"]
    fresh = Store(tmp_path, code=lambda stage: "v2")
    assert fresh.run("s", {"p": 1}, again) == first and calls == [1]
    assert (first / "out.txt").read_text() == "v2" and fresh.stale == []
    # the stale result is kept aside, not deleted
    assert (first.with_name(first.name + ".stale") / "out.txt").read_text() == "v1"


def test_every_stage_kind_has_a_code_fingerprint():
    assert set(STAGE_CODE) == {"conversations", "samples", "judged", "pairs", "train", "eval"}
    versions = {stage: code_version(stage) for stage in STAGE_CODE}
    assert all(len(v) == 16 for v in versions.values())
    assert versions["judged"] != versions["train"]


def test_a_second_process_waits_and_reuses(tmp_path):
    proc = _child(tmp_path, 1.0)
    calls = []
    folder = Store(tmp_path, code=lambda stage: "v1").run("s", {"p": 1}, lambda f: calls.append(f))
    assert proc.wait(timeout=60) == 0
    assert not calls and (folder / "out.txt").read_text() == "child"


def test_no_wait_stops_and_a_killed_holders_lock_is_taken_over(tmp_path):
    proc = _child(tmp_path, 60.0)
    store = Store(tmp_path, code=lambda stage: "v1", wait=False)
    with pytest.raises(StageBusy, match=rf"is being computed by pid {proc.pid} on "):
        store.run("s", {"p": 1}, _write("parent"))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    folder = store.run("s", {"p": 1}, _write("parent"))  # the dead child's lock is free
    assert (folder / "out.txt").read_text() == "parent"
    assert store.computed == [f"s/{folder.name}"]


def test_a_full_disk_mid_stage_leaves_it_partial_and_the_rerun_recomputes(tmp_path, monkeypatch):
    """A write that fails with ENOSPC: the error names the file, nothing half-written stays,
    the stage is not marked done, and the next run computes it whole."""
    import errno

    from rpo_bench import files
    from rpo_bench.jsonl import read_jsonl, write_jsonl

    def work(folder):
        write_jsonl(folder / "a.jsonl", [{"n": 1}])
        write_jsonl(folder / "b.jsonl", [{"n": 2}] * 1000)

    real_fdopen = files.os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            if len(text) > 100:  # b.jsonl: the disk fills up
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(text)

    monkeypatch.setattr(files.os, "fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))
    store = Store(tmp_path)
    with pytest.raises(OSError, match=r"cannot write .*b\.jsonl: No space left on device"):
        store.run("samples", {"x": 1}, work)
    partial = store.folder("samples", {"x": 1}).with_name(
        store.folder("samples", {"x": 1}).name + ".partial"
    )
    assert not store.done("samples", {"x": 1})
    assert sorted(p.name for p in partial.iterdir()) == ["a.jsonl", "inputs.json"]  # no temp file
    monkeypatch.setattr(files.os, "fdopen", real_fdopen)
    final = Store(tmp_path).run("samples", {"x": 1}, work)
    assert read_jsonl(final / "b.jsonl") == [{"n": 2}] * 1000
    assert not partial.exists()


def test_a_stage_that_finishes_without_a_declared_output_fails_naming_it(tmp_path):
    """The runner's stages declare their files (`ablate.stages`): work that leaves one out
    fails in its own stage, and nothing is stored under the key, so a rerun computes it."""
    from rpo_bench.ablate import config as config_mod
    from rpo_bench.ablate.runner import Runner
    from rpo_bench.ablate.stages import PAIR_STATS, PAIRS

    from conftest import REPO

    runner = Runner(config_mod.load(REPO / "ablations" / "smoke.yaml"), tmp_path)

    def pairs_only(folder):
        PAIRS.path(folder).write_text("")

    with pytest.raises(RuntimeError, match=f"stage 'pairs' finished without {PAIR_STATS}"):
        runner._stage(PAIRS, "pairs:x", {"p": 1}, pairs_only)
    assert not runner.store.done("pairs", {"p": 1})

    def both(folder):
        pairs_only(folder)
        PAIRS.path(folder, PAIR_STATS).write_text("{}")

    folder = runner._stage(PAIRS, "pairs:x", {"p": 1}, both)
    assert PAIRS.path(folder).exists() and runner.store.done("pairs", {"p": 1})
    with pytest.raises(KeyError, match="declares no file 'eval.json'"):
        PAIRS.path(folder, "eval.json")
