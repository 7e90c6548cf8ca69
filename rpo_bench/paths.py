"""Where rpo_bench keeps its cache, finds its vendored data and the licence-restricted data."""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES = Path(__file__).parent / "resources"
REPO_ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = REPO_ROOT / "tasks"


def cache_dir() -> Path:
    """Root of everything rpo_bench writes once and reuses (prepared models, NLTK data)."""
    root = os.environ.get("RPO_BENCH_CACHE") or Path.home() / ".cache" / "rpo_bench"
    return Path(root)


def resource(*parts: str) -> Path:
    """A vendored, permissively licensed data file shipped inside the package."""
    path = RESOURCES.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"vendored resource missing: {path} (is the package installed whole?)"
        )
    return path


def data_dir() -> Path | None:
    """The local data folder laid out like ../shared/data (`RPO_BENCH_DATA`), or None."""
    root = os.environ.get("RPO_BENCH_DATA")
    return Path(root) if root else None


def sysbench_file(name: str = "sysbench_eval.jsonl") -> Path:
    """SysBench declares no licence, so it is never vendored: it must come from RPO_BENCH_DATA."""
    root = data_dir()
    path = root / "sysbench" / name if root else None
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"SysBench file {name!r} not found. SysBench has no licence and is not shipped; "
            "set RPO_BENCH_DATA to a folder holding sysbench/"
            + name
            + (f" (looked in {root})" if root else "")
        )
    return path
