"""Fault points for crash tests: with `RPO_BENCH_FAULT=kill:<point>` in the environment,
the process kills itself with SIGKILL on reaching that point, the crash a test needs at an
exact place (a timer or a watcher would race a quick stage). Unset in normal use: a point
is then one dictionary lookup.

Points: `stage:<kind>` (a stage's work done, its folder not yet committed; `ablate.store`),
`report` (the report's files written, not yet in place; `ablate.report`), `train-step-<n>`
(after optimizer step n's checkpoint, in every process; `train.loop`), `judged-<n>` (the
n-th turn a judge judged, stored; `judge.base`).
"""

from __future__ import annotations

import os
import signal

ENV = "RPO_BENCH_FAULT"


def reach(point: str) -> None:
    """Die here, as kill -9 would, when the environment names this point."""
    if os.environ.get(ENV) == f"kill:{point}":
        os.kill(os.getpid(), signal.SIGKILL)
