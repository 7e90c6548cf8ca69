"""IFEval (vendored copy, 541 prompts): documents and per-document scoring.

The lm-eval task `ifeval_local` and the ablation's evaluation stage both call these.
"""

from __future__ import annotations

from typing import Any

from rpo_bench.evaluate.verifiable import constraints_for, score
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import resource


def docs(limit: int | None = None) -> list[dict[str, Any]]:
    return read_jsonl(resource("ifeval", "input_data.jsonl"))[:limit]


def score_doc(doc: dict[str, Any], reply: str) -> dict[str, Any]:
    return score(constraints_for(doc["instruction_id_list"], doc["kwargs"]), reply)


def load_docs(**_: Any) -> dict[str, Any]:
    """lm-eval's custom_dataset hook."""
    import datasets

    return {"test": datasets.Dataset.from_list(docs())}


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    return score_doc(doc, results[0])
