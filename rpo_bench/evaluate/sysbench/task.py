"""The `sysbench_multiturn` lm-eval task: 500 sessions x 5 turns, judged, scored as SysBench.

Each doc is one session. Turns 1-4 are played with the model's own replies (MultiTurnTask);
turn 5 is the evaluator's request. `process_results` then judges all five turns (each
judge prompt holds the model's own earlier answers) and the aggregations score the judged
turns with `rpo_bench.evaluate.sysbench.score`: `csr`, `isr`, `ssr` in PERCENT (0-100),
exactly as `rpo-bench sysbench-score` prints them; `judge_errors` counts the turns the judge
could not judge (left out of CSR/ISR, ending the SSR streak, never counted as pass or fail).

Task metadata (`--metadata` JSON, or TaskManager(metadata=...)):
- `judge`: "openai" (default), "hf" or "replay" (a labels file; for re-scoring and tests).
- `judge_args`: the judge's constructor options (rpo_bench.judge.make_judge). For openai
  the defaults are GPT-4o 2024-05-13 (the SysBench reference judge) at api.openai.com,
  the key from $OPENAI_API_KEY; `base_url` and `model` point it at any compatible server,
  e.g. a vLLM-served open judge. openai and hf judgements are cached on disk by default
  (<rpo_bench cache>/judge/judgements.sqlite; `"cache": null` turns that off).
- `sysbench_file`: the session file (default $RPO_BENCH_DATA/sysbench/sysbench_eval.jsonl,
  else SysBench's JSON at a pinned commit, downloaded once into the rpo_bench cache).
- `model_name`: what the judged rows name as the model (default: model_args' `pretrained`).
"""

from __future__ import annotations

import math
import os
from typing import Any

from rpo_bench.evaluate.multiturn_task import MultiTurnTask
from rpo_bench.evaluate.sysbench.data import (
    data_file,
    label_from_row,
    load_sessions,
    session_doc,
    session_from_row,
)
from rpo_bench.evaluate.sysbench.judging import judge_sessions
from rpo_bench.evaluate.sysbench.metrics import score
from rpo_bench.judge import Judge, make_judge
from rpo_bench.judge.openai import DEFAULT_BASE_URL
from rpo_bench.paths import cache_dir
from rpo_bench.rollout.multiturn import Conversation

DEFAULT_JUDGE = "openai"


def load_docs(sysbench_file: str | None = None, **_: Any) -> dict:
    """Every session as a doc (lm-eval's custom_dataset; other metadata keys are ignored)."""
    import datasets

    sessions = load_sessions(data_file(sysbench_file))
    return {"test": datasets.Dataset.from_list([session_doc(s) for s in sessions])}


# ---------------------------------------------------------------- judge


def make_sysbench_judge(metadata: dict[str, Any] | None) -> Judge:
    """The judge the task metadata asks for (see the module docstring for the keys)."""
    metadata = metadata or {}
    kind = metadata.get("judge") or DEFAULT_JUDGE
    args = dict(metadata.get("judge_args") or {})
    if kind in ("openai", "hf") and "cache" not in args:
        args["cache"] = cache_dir() / "judge" / "judgements.sqlite"
    judge = make_judge(kind, **args)
    if kind == "openai":
        key_env = args.get("api_key_env", "OPENAI_API_KEY")
        if args.get("base_url", DEFAULT_BASE_URL) == DEFAULT_BASE_URL and not os.environ.get(
            key_env
        ):
            # Fail before generating for an hour, not when the first turn is judged.
            raise ValueError(
                f"sysbench_multiturn judges with {judge.name} at {DEFAULT_BASE_URL}, which needs "
                f"${key_env}. Set it, or choose another judge with --metadata, e.g. "
                '\'{"judge_args": {"base_url": "http://localhost:8000/v1", "model": "..."}}\' '
                'or \'{"judge": "hf"}\'.'
            )
    return judge


# ---------------------------------------------------------------- task


class SysBenchTask(MultiTurnTask):
    def to_conversation(self, doc: dict) -> Conversation:
        return Conversation(
            str(doc["system_id"]), [t["user"] for t in doc["turns"]], system=doc["system_prompt"]
        )

    def build_all_requests(self, **kw: Any) -> None:
        self._judge = make_sysbench_judge(self.config.metadata)
        super().build_all_requests(**kw)

    def process_results(self, doc: dict, results: list[str]) -> dict[str, Any]:
        """Judge all five turns; every metric gets the session and its judged rows."""
        sid = doc["system_id"]
        answers = {(sid, k): reply for k, reply in enumerate(self.replies(doc, results), 1)}
        metadata = self.config.metadata or {}
        # lm-eval merges --model_args into the metadata, so `pretrained` names the model.
        model_name = str(metadata.get("model_name") or metadata.get("pretrained") or "model")
        rows = judge_sessions(self._judge, [doc], answers, model_name)
        item = {"session": doc, "labels": rows}
        errors = sum(row["judge_error"] for row in rows)
        return {"csr": item, "isr": item, "ssr": item, "judge_errors": errors}


def scores(items: list[dict[str, Any]]) -> dict[str, Any]:
    """sysbench.score over the judged sessions (full precision, no bootstrap interval)."""
    sessions, labels = [], []
    for item in items:
        where = f"sysbench_multiturn: session {item['session']['system_id']}"
        sessions.append(session_from_row(item["session"], where))
        labels += [label_from_row(row, where) for row in item["labels"]]
    return score(labels, sessions, n_boot=1, ndigits=None)


def _metric(items: list[dict[str, Any]], name: str) -> float:
    value = scores(items)[name]
    return math.nan if value is None else value  # None: every turn was a judge error


def csr(items: list[dict[str, Any]]) -> float:
    return _metric(items, "csr")


def isr(items: list[dict[str, Any]]) -> float:
    return _metric(items, "isr")


def ssr(items: list[dict[str, Any]]) -> float:
    return _metric(items, "ssr")


def document_scores(sample: dict[str, Any]) -> list[float | None]:
    """One logged lm-eval sample (a session) as [its CSR as a fraction], None if unjudged:
    the per-session score the report pairs across models."""
    value = scores([sample["csr"]])["csr"]
    return [None if value is None else value / 100]


def judge_errors(items: list[int]) -> int:
    """Turns the judge could not judge, over all sessions."""
    return sum(items)


__all__ = [
    "SysBenchTask",
    "csr",
    "data_file",
    "document_scores",
    "isr",
    "judge_errors",
    "load_docs",
    "make_sysbench_judge",
    "scores",
    "session_doc",
    "ssr",
]
