"""Evaluation stage: a model's replies on each task, scored per prompt.

Single-turn tasks use the same prompts and scorers as the lm-eval tasks
`ifeval_local` and `ifbench` (rpo_bench.evaluate.verifiable / .ifbench); replies come
from the rollout engine (greedy), which gives the same text as lm-eval's HF model
and is faster. Per-prompt scores are kept so the report can bootstrap over prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rpo_bench.evaluate import ifbench
from rpo_bench.evaluate.verifiable import constraints_for, score
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import resource

METRICS = (
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
)


@dataclass(frozen=True)
class SingleTurnTask:
    file: tuple[str, str]  # resource(*file)
    scorer: Callable[[dict, str], dict[str, Any]]


def _score_ifeval(doc: dict, reply: str) -> dict[str, Any]:
    return score(constraints_for(doc["instruction_id_list"], doc["kwargs"]), reply)


def _score_ifbench(doc: dict, reply: str) -> dict[str, Any]:
    return ifbench.score(doc["instruction_id_list"], doc["kwargs"], doc["prompt"], reply)


SINGLE_TURN = {
    "ifeval_local": SingleTurnTask(("ifeval", "input_data.jsonl"), _score_ifeval),
    "ifbench": SingleTurnTask(("ifbench", "IFBench_test.jsonl"), _score_ifbench),
}


def prompt_score(row: dict[str, Any]) -> float | None:
    """One number per prompt for paired comparisons: the mean of IFEval's four metrics,
    instruction-level as this prompt's fraction followed. None if it could not be scored."""
    parts = []
    for m in METRICS:
        v = row[m]
        if isinstance(v, list):
            if not v:
                return None
            v = sum(v) / len(v)
        if v is None:
            return None
        parts.append(float(v))
    return sum(parts) / len(parts)


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """IFEval's four metrics (prompt-level over prompts, instruction-level pooled) and
    `overall`, their mean, as Multi-IF reports it. Unscorable prompts are left out."""
    out: dict[str, float] = {}
    for m in METRICS:
        if m.startswith("inst"):
            flat = [x for r in rows for x in r[m]]
            out[m] = float(np.mean(flat)) if flat else float("nan")
        else:
            vals = [r[m] for r in rows if r[m] is not None]
            out[m] = float(np.mean(vals)) if vals else float("nan")
    out["overall"] = float(np.mean([out[m] for m in METRICS]))
    return out


def single_turn(task: str, backend: Any, settings: Any, limit: int | None) -> list[dict[str, Any]]:
    """Per-prompt rows: key, prompt, reply and the four metrics."""
    spec = SINGLE_TURN[task]
    docs = read_jsonl(resource(*spec.file))[:limit]
    replies = backend.generate([[{"role": "user", "content": d["prompt"]}] for d in docs], settings)
    rows = []
    for doc, (reply,) in zip(docs, replies, strict=True):
        result = spec.scorer(doc, reply)
        rows.append({"key": doc["key"], "prompt": doc["prompt"], "reply": reply, **result})
    return rows


def lm_eval_task(task: str, model: str, e: Any, out: Any) -> dict[str, Any]:
    """A task run by `rpo-bench eval` (lm-eval); its numeric metrics, no per-prompt scores."""
    from rpo_bench.evaluate import harness

    summary = harness.run(
        model=model,
        tasks=[task],
        limit=e.limit,
        batch_size=e.batch_size,
        max_gen_toks=e.max_new_tokens,
        out=out,
        metadata=dict(e.metadata) or None,
    )
    metrics = {
        k.split(",")[0]: float(v)
        for k, v in summary["results"][task].items()
        if isinstance(v, int | float) and "stderr" not in k
    }
    return {"metrics": metrics, "per_prompt": []}
