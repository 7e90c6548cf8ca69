"""Evaluation stage: a model's replies on each task, scored per prompt.

Single-turn tasks use the same documents, scorers and aggregation as the lm-eval tasks
`ifeval_local` and `ifbench` (rpo_bench.evaluate.ifeval / .ifbench / .metrics); replies come
from the rollout engine (greedy), which gives the same text as lm-eval's HF model
and is faster. Per-prompt scores are kept so the report can bootstrap over prompts.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from rpo_bench.evaluate import ifbench, ifeval
from rpo_bench.evaluate.metrics import METRICS, aggregate, prompt_score
from rpo_bench.jsonl import read_jsonl

__all__ = ["METRICS", "SINGLE_TURN", "aggregate", "lm_eval_task", "prompt_score", "single_turn"]

# Each module's docs() and score_doc() are what its lm-eval task calls.
SINGLE_TURN: dict[str, ModuleType] = {"ifeval_local": ifeval, "ifbench": ifbench}


def single_turn(task: str, backend: Any, settings: Any, limit: int | None) -> list[dict[str, Any]]:
    """Per-prompt rows: key, prompt, reply and the four metrics."""
    benchmark = SINGLE_TURN[task]
    docs = benchmark.docs(limit)
    replies = backend.generate([[{"role": "user", "content": d["prompt"]}] for d in docs], settings)
    rows = []
    for doc, (reply,) in zip(docs, replies, strict=True):
        result = benchmark.score_doc(doc, reply)
        rows.append({"key": doc["key"], "prompt": doc["prompt"], "reply": reply, **result})
    return rows


def document_scorer(task: str) -> Any:
    """The per-document scorer of an lm-eval multi-turn task's logged samples."""
    from rpo_bench.evaluate.multi_if import task as multi_if_task
    from rpo_bench.evaluate.sysbench import task as sysbench_task

    if task.startswith("multi_if"):
        return multi_if_task.document_scores
    if task.startswith("sysbench"):
        return sysbench_task.document_scores
    raise ValueError(f"no per-document scores for lm-eval task {task!r}")


def lm_eval_task(task: str, model: str, e: Any, out: Path) -> dict[str, Any]:
    """A task run by `rpo-bench eval` (lm-eval): its numeric metrics, and per-document
    scores from its logged samples (doc order; every turn for Multi-IF, sessions for
    SysBench) for the report's paired intervals."""
    from rpo_bench.evaluate import harness

    summary = harness.run(
        model=model,
        tasks=[task],
        limit=e.limit,
        batch_size=e.batch_size,
        max_gen_toks=e.max_new_tokens,
        out=out,
        metadata=dict(e.metadata) or None,
        decoding_protocol=e.decoding,
    )
    metrics = {
        k.split(",")[0]: float(v)
        for k, v in summary["results"][task].items()
        if isinstance(v, int | float) and "stderr" not in k
    }
    scorer = document_scorer(task)
    per_prompt = []
    for path in sorted(out.glob(f"samples_{task}*.jsonl")):  # a group: one file per subtask
        for sample in sorted(read_jsonl(path), key=lambda s: s["doc_id"]):
            per_prompt += scorer(sample)
    return {"metrics": metrics, "per_prompt": per_prompt}
