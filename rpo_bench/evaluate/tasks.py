"""Every evaluation task in one registry: its kind, its documents and its per-document scorer.

Kinds:
- `single_turn` (IFEval, IFBench): documents and a scorer that lm-eval's task calls too;
  the ablation decodes them greedily with the rollout engine (the same text, faster).
- `heldout`: the study's own held-out conversations (`evaluate.heldout`), played by the
  rollout engine with the model's own history.
- `lm_eval` (Multi-IF, SysBench: multi-turn, SysBench judged): run through lm-eval; the
  per-document scores come from its logged samples (every turn for Multi-IF, sessions for
  SysBench), for the report's paired intervals.
- `conditionality`: the conditionality index J (`evaluate.conditionality`): the held-out
  conversations' first turns under each reversible constraint and under its exact reversal,
  decoded by the rollout engine; its own metrics (J, not IFEval's four), a score per item.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rpo_bench.evaluate.decoding import task_family
from rpo_bench.rollout.settings import GenerationSettings

SINGLE_TURN, HELDOUT, LM_EVAL = "single_turn", "heldout", "lm_eval"
CONDITIONALITY = "conditionality"


@dataclass(frozen=True)
class EvalTask:
    """A task; `module` holds its `docs(limit)` and `score_doc(doc, reply)` (single-turn) or
    its `document_scores(logged_sample)` (lm-eval), imported when first used."""

    name: str
    kind: str
    module: str | None = None

    @property
    def engine(self) -> bool:
        """Whether the rollout engine decodes it (greedy), rather than lm-eval."""
        return self.kind != LM_EVAL

    def _module(self) -> Any:
        return importlib.import_module(f"rpo_bench.evaluate.{self.module}")

    def docs(self, limit: int | None) -> list[dict[str, Any]]:
        return self._module().docs(limit)

    def score_doc(self, doc: dict[str, Any], reply: str) -> dict[str, Any]:
        return self._module().score_doc(doc, reply)

    def document_scores(self, sample: dict[str, Any]) -> list[float | None]:
        return self._module().document_scores(sample)

    def check_data(self, metadata: Mapping[str, Any]) -> None:
        """FileNotFoundError now if the task's data is missing, for tasks whose module has a
        `check_data(**metadata)` (lm-eval's task metadata); others read vendored data."""
        check = getattr(self._module(), "check_data", None) if self.module else None
        if check is not None:
            check(**metadata)


TASKS: dict[str, EvalTask] = {t.name: t for t in (
    EvalTask("ifeval_local", SINGLE_TURN, "ifeval"),
    EvalTask("ifbench", SINGLE_TURN, "ifbench"),
    EvalTask("heldout", HELDOUT),
    EvalTask("conditionality", CONDITIONALITY, "conditionality"),
    EvalTask("multi_if", LM_EVAL, "multi_if.task"),
    EvalTask("sysbench_multiturn", LM_EVAL, "sysbench.task"),
)}  # fmt: skip


def registered(name: str) -> EvalTask | None:
    """The task an lm-eval task or group name is (a Multi-IF language: multi_if), or None."""
    return TASKS.get(task_family(name))


def task(name: str) -> EvalTask:
    if name not in TASKS:
        raise ValueError(f"unknown evaluation task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def single_turn(
    name: str, backend: Any, settings: GenerationSettings, limit: int | None
) -> list[dict[str, Any]]:
    """Per-prompt rows of a single-turn task: key, prompt, reply and the four metrics."""
    t = task(name)
    docs = t.docs(limit)
    replies = backend.generate([[{"role": "user", "content": d["prompt"]}] for d in docs], settings)
    return [{"key": doc["key"], "prompt": doc["prompt"], "reply": reply, **t.score_doc(doc, reply)}
            for doc, (reply,) in zip(docs, replies, strict=True)]  # fmt: skip
