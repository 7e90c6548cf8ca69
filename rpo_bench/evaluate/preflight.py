"""Checks made before a model loads, so that a typo or missing data costs seconds, not a load.

- `check_tasks`: names lm-eval would not resolve are refused, each with a close match, and
  the valid names listed (lm-eval's own error names neither).
- `check_data`: tasks whose module has `check_data(**metadata)` look for their data now
  (Multi-IF: a local copy, else the hub, tried once quickly (`rpo_bench.hub`), not retried).
"""

from __future__ import annotations

import difflib
import glob
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rpo_bench.paths import TASKS_DIR

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager


class UnknownTask(ValueError):
    """Task names lm-eval does not know; the message lists the valid ones."""


class MissingData(FileNotFoundError):
    """A task's benchmark data is neither local nor reachable; the message says what to do."""


def _paths(include_path: str | Path | list[str | Path] | None) -> list[Path]:
    if include_path is None:
        return []
    items = include_path if isinstance(include_path, list | tuple) else [include_path]
    return [Path(p).resolve() for p in items]


def _ours() -> list[str]:
    """The task, group and tag names under tasks/ (indexing them alone takes milliseconds)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=TASKS_DIR, include_defaults=False).all_tasks


def check_tasks(
    names: Iterable[str],
    include_path: str | Path | list[str | Path] | None,
    manager: TaskManager | None = None,
) -> None:
    """Raise UnknownTask for the names that `manager` (default: lm-eval's tasks and those
    under `include_path`) resolves neither as a name, a pattern nor a YAML path."""
    from lm_eval.tasks import TaskManager

    manager = manager or TaskManager(include_path=include_path)
    unknown = [n for n in names if not (manager.match_tasks([n]) or glob.glob(n))]
    if not unknown:
        return
    ours = _ours()
    included = TASKS_DIR.resolve() in _paths(include_path)
    # Without the include path, rpo_bench's names are matched too, for the hint below.
    candidates = manager.all_tasks if included else [*manager.all_tasks, *ours]

    def described(name: str) -> str:
        match = difflib.get_close_matches(name, candidates, n=1)
        return f"{name!r}" + (f" (did you mean {match[0]!r}?)" if match and match != [name] else "")

    listed = ours if included else []
    valid = ", ".join(listed)
    if more := len(set(manager.all_tasks) - set(listed)):
        valid += (
            f"{', or ' if valid else ''}any of {more} more that lm-eval knows (lm-eval ls tasks)"
        )
    hint = "" if included else f"; with --include_path {TASKS_DIR}: {', '.join(ours)}"
    plural = "s" if len(unknown) > 1 else ""
    raise UnknownTask(
        f"unknown task{plural} {', '.join(map(described, unknown))}; "
        f"valid tasks: {valid or 'none'}{hint}"
    )


def check_data(names: Iterable[str], metadata: Mapping[str, Any]) -> None:
    """Raise MissingData now for the first of `names` whose data is missing (see above);
    `metadata` is what lm-eval passes the tasks (e.g. Multi-IF's `data_file`). Other names,
    unknown ones included, are `check_tasks`'s."""
    from rpo_bench.evaluate.tasks import registered

    ours = set(_ours())
    for task in dict.fromkeys(t for n in names if n in ours and (t := registered(n))):
        try:
            task.check_data(metadata)
        except FileNotFoundError as err:
            raise MissingData(str(err)) from None
