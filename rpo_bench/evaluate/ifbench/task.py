"""The `ifbench` lm-eval task's hooks: the vendored test set, load_docs, process_results."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rpo_bench.evaluate.ifbench.checkers import checker_version, unavailable_message
from rpo_bench.evaluate.ifbench.metrics import coverage, score_doc
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import resource

log = logging.getLogger(__name__)


def docs(limit: int | None = None) -> list[dict[str, Any]]:
    """The vendored IFBench test set (294 prompts)."""
    return read_jsonl(resource("ifbench", "IFBench_test.jsonl"))[:limit]


def _check_metadata(metadata: Mapping[str, Any]) -> None:
    """The task's static metadata names the checkers; refuse to run other ones under it."""
    installed = checker_version()
    want = {"checkers": f"{installed['package']}=={installed['version']}"}
    want["upstream_commit"] = installed["upstream_commit"]
    for key, value in want.items():
        if key in metadata and str(metadata[key]) != value:
            raise RuntimeError(
                f"tasks/ifbench/ifbench.yaml says {key}: {metadata[key]}, but this install "
                f"scores with {value}: reinstall with scripts/setup.sh or update the task"
            )


def load_docs(allow_unavailable: bool = False, **metadata: Any) -> dict[str, Any]:
    """lm-eval's custom_dataset hook; it gets the task metadata as keyword arguments.

    Each document carries `allow_unavailable` so that process_results applies the policy.
    """
    import datasets

    _check_metadata(metadata)
    rows = docs()
    whole, missing = coverage(rows)
    if missing:
        what = "are left out of the metrics" if allow_unavailable else "will FAIL scoring"
        log.warning(
            "IFBench: %d of %d prompts lack NLTK data here and %s. %s",
            len(rows) - whole,
            len(rows),
            what,
            " ".join(unavailable_message(i, r) for i, r in missing.items()),
        )
    for row in rows:
        row["allow_unavailable"] = bool(allow_unavailable)
    return {"test": datasets.Dataset.from_list(rows)}


def process_results(doc: Mapping[str, Any], results: list[str]) -> dict[str, Any]:
    """lm-eval's per-document hook: `score_doc` of the one generated reply."""
    return score_doc(doc, results[0])
