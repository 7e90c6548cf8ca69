"""The `sysbench_multiturn` lm-eval task: 500 sessions x 5 turns, judged, scored as SysBench.

Each doc is one session. Turns 1-4 are played with the model's own replies (MultiTurnTask);
turn 5 is the evaluator's request. `process_results` then judges all five turns (each
judge prompt holds the model's own earlier answers) and the aggregations score the judged
turns with `rpo_bench.evaluate.sysbench.score`: `csr`, `isr`, `ssr` in PERCENT (0-100),
exactly as `rpo-bench sysbench-score` prints them; `judge_cut_off` counts the turns whose
judge reply the server cut off at a token limit; `judge_errors` counts the turns the judge
could not judge (left out of CSR/ISR, ending the SSR streak, never counted as pass or fail).

Task metadata (`--metadata` JSON, or TaskManager(metadata=...)):
- `judge`: "openai" (default), "hf" or "replay" (a labels file; for re-scoring and tests).
- `judge_args`: the judge's constructor options (rpo_bench.judge.make_judge). For openai
  the defaults are GPT-4o 2024-05-13 (the SysBench reference judge) at api.openai.com,
  the key from $OPENAI_API_KEY; `base_url` and `model` point it at any compatible server,
  e.g. a vLLM-served open judge. openai and hf judgements are cached on disk by default
  (<rpo_bench cache>/judge/judgements.sqlite; `"cache": null` turns that off), and so is
  every raw answer: a rerun reads stored answers again first, and a turn whose stored
  answers never parsed is asked again only with `"rejudge_errors": true`.
- `sysbench_file`: the session file (default $RPO_BENCH_DATA/sysbench/sysbench_eval.jsonl,
  else SysBench's JSON at a pinned commit, downloaded once into the rpo_bench cache).
- `model_name`: what the judged rows name as the model (default: model_args' `pretrained`).
- `judge_prompt`: "official" (default: SysBench's own prompt and answer format) or "rpo_bench".
- `unjudged`: "session" (default, SysBench's rule: a session with a turn the judge never
  parsed is not scored, and the next run judges it again; failures are never cached) or
  "turn" (only that turn is left out). `unjudged_sessions` counts them either way.
- `history`: "own" (default: earlier turns show the model's own replies) or "reference"
  (SysBench's ground-truth-history variant: the data's reference replies, in the prompt and
  in the judge's view; needs data that holds them, as SysBench's own JSON does).
- `decoding`: "official" (default; SysBench's per-model reference settings, see
  rpo_bench.evaluate.decoding) or "greedy".

The system message must reach the model: a prompt whose chat template dropped it, or that
lm-eval would cut from the left to fit the context, stops the task with an error naming the
session, never a score.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from typing import Any, NoReturn

from rpo_bench.evaluate.multiturn_task import MultiTurnTask
from rpo_bench.evaluate.sysbench.data import (
    ALIGNMENTS,
    N_ROUNDS,
    TYPE_ALIASES,
    data_file,
    label_from_row,
    load_sessions,
    session_doc,
    session_from_row,
)
from rpo_bench.evaluate.sysbench.judging import HISTORIES, judge_sessions, reference_replies
from rpo_bench.evaluate.sysbench.metrics import SPLITS, UNJUDGED, score
from rpo_bench.judge import Judge, JudgeUnavailable, make_judge
from rpo_bench.judge.official import official_file
from rpo_bench.judge.openai import DEFAULT_BASE_URL
from rpo_bench.judge.prompt import DEFAULT_PROMPT
from rpo_bench.paths import cache_dir
from rpo_bench.rollout.multiturn import Conversation, history_of

DEFAULT_JUDGE = "openai"
log = logging.getLogger(__name__)


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
    if kind in ("openai", "hf"):
        args.setdefault("prompt", metadata.get("judge_prompt") or DEFAULT_PROMPT)
    if kind in ("openai", "hf") and "cache" not in args:
        args["cache"] = cache_dir() / "judge" / "judgements.sqlite"
    judge = make_judge(kind, **args)
    if getattr(judge, "prompt", None) is not None and judge.prompt.name == "official":
        official_file("utils.py")  # present and verified before an hour of generation
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


class SystemMessageLost(ValueError):
    """The model would not see the session's system message: the result would mean nothing."""


class SysBenchTask(MultiTurnTask):
    def to_conversation(self, doc: dict) -> Conversation:
        return Conversation(
            str(doc["system_id"]), [t["user"] for t in doc["turns"]], system=doc["system_prompt"]
        )

    def build_all_requests(self, **kw: Any) -> None:
        metadata = self.config.metadata or {}
        self._unjudged = metadata.get("unjudged") or UNJUDGED[0]
        self._history_kind = metadata.get("history") or HISTORIES[0]
        for key, value, allowed in (
            ("unjudged", self._unjudged, UNJUDGED),
            ("history", self._history_kind, HISTORIES),
        ):
            if value not in allowed:
                raise ValueError(f"sysbench_multiturn: metadata {key} must be one of {allowed}")
        if self._history_kind == "reference":  # every session must have its reference replies
            for doc in self.dataset[self.config.test_split]:
                reference_replies(doc)
        try:
            self._judge = make_sysbench_judge(metadata)
            self._judge.check()  # the endpoint answers: in seconds, before any generation
        except (JudgeUnavailable, ValueError) as err:
            stop(f"sysbench_multiturn: {err}")
        super().build_all_requests(**kw)

    def chat_for(self, doc: dict, conv: Conversation, turn: int, history: list[dict]) -> list[dict]:
        if self._history_kind == "reference":  # SysBench's ground-truth-history variant
            history = history_of(conv, reference_replies(doc), turn)
        return conv.chat(turn, history)

    def check_prompt(self, doc: dict, turn: int, chat: list[dict], prompt: str) -> str:
        where = f"sysbench_multiturn: session {doc['system_id']} round {turn + 1}"
        if doc["system_prompt"].strip() not in prompt:
            raise SystemMessageLost(
                f"{where}: the system message is not in the prompt the model sees (its chat "
                "template rejects or drops the system role, and lm-eval then silently removes "
                "it). SysBench measures system-message following: use a model whose chat "
                "template takes a system message."
            )
        lm = self._lm
        budget = self.config.generation_kwargs.get("max_gen_toks", lm.max_gen_toks)
        n_tokens = len(lm.tok_encode(prompt))
        if n_tokens + budget > lm.max_length:
            raise SystemMessageLost(
                f"{where}: the prompt has {n_tokens} tokens and {budget} new tokens are allowed, "
                f"over the model's {lm.max_length}; lm-eval would cut the prompt from the left, "
                "the system message first. Use a model with a longer context or a smaller "
                "max_gen_toks."
            )
        return prompt

    def process_results(self, doc: dict, results: list[str]) -> dict[str, Any]:
        """Judge all five turns; every metric gets the session and its judged rows."""
        sid = doc["system_id"]
        answers = {(sid, k): reply for k, reply in enumerate(self.replies(doc, results), 1)}
        metadata = self.config.metadata or {}
        # lm-eval merges --model_args into the metadata, so `pretrained` names the model.
        model_name = str(metadata.get("model_name") or metadata.get("pretrained") or "model")
        rows = judge_sessions(self._judge, [doc], answers, model_name, self._history_kind)
        item = {"session": doc, "labels": rows, "unjudged": self._unjudged}
        errors = sum(row["judge_error"] for row in rows)
        return {name: item for name in METRICS} | {
            "judge_errors": errors,
            "judge_cut_off": sum(row["judge_failure"] == "cut_off" for row in rows),
            "unjudged_sessions": sid if errors else None,
        }


def scores(items: list[dict[str, Any]]) -> dict[str, Any]:
    """sysbench.score over the judged sessions (full precision, no bootstrap interval)."""
    sessions, labels = [], []
    for item in items:
        where = f"sysbench_multiturn: session {item['session']['system_id']}"
        sessions.append(session_from_row(item["session"], where))
        labels += [label_from_row(row, where) for row in item["labels"]]
    policy = items[0].get("unjudged", UNJUDGED[0]) if items else UNJUDGED[0]
    return score(labels, sessions, n_boot=1, ndigits=None, unjudged=policy)


def flat(result: dict[str, Any]) -> dict[str, float | None]:
    """A `score` result as lm-eval metric names: the nested splits flattened."""
    out = {k: v for k, v in result.items() if isinstance(v, float | int) or v is None}
    out |= {f"round_{k}_pass": v for k, v in result["round_pass"].items()}
    out |= {f"csr_{result['type_aliases'][t]}": v for t, v in result["csr_by_type"].items()}
    return out


# Every metric the task reports besides the counts; each is the aggregation of that name.
METRICS = (
    ["csr", "isr", "ssr", "isr_align", "isr_misalign", "isr_dependent", "isr_parallel"]
    + [f"isr_{sp}_{a}" for sp in SPLITS for a in ALIGNMENTS]
    + ["ssr_dependent", "ssr_parallel"]
    + [f"r{k}{sp}" for sp in ("", "_dependent", "_parallel") for k in range(1, N_ROUNDS + 1)]
    + [f"round_{k}_pass" for k in range(1, N_ROUNDS + 1)]
    + [f"csr_{alias}" for alias in TYPE_ALIASES.values()]
)


def stop(message: str) -> NoReturn:
    """End the run with exit code 2 and the message alone. lm-eval runs this task inside its
    own CLI, whose exit code is ours to set only this way; a traceback would bury the message
    and a NaN table with exit 0 would look like a result."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def require_judged(items: list[dict[str, Any]]) -> None:
    """Stop where not one turn was judged: every metric would be NaN. Some unjudged turns
    are counted (`judge_errors`) and left unscored, as SysBench does."""
    rows = [row for item in items for row in item["labels"]]
    if rows and all(row.get("judge_error") for row in rows):  # labels files may lack it
        stop(
            f"sysbench_multiturn: none of the {len(rows)} turns could be judged, so there is "
            f"no score; the first turn's judge error: {rows[0].get('error')}"
        )


def _aggregation(name: str) -> Any:
    def aggregate(items: list[dict[str, Any]]) -> float:
        require_judged(items)
        value = flat(scores(items)).get(name)
        return math.nan if value is None else float(value)  # None: nothing to score

    aggregate.__name__ = aggregate.__qualname__ = name
    return aggregate


for _name in METRICS:  # module attributes, so the YAML can name each as `utils.<metric>`
    globals()[_name] = _aggregation(_name)


def document_scores(sample: dict[str, Any]) -> list[float | None]:
    """One logged lm-eval sample (a session) as [its CSR as a fraction], None if unjudged:
    the per-session score the report pairs across models."""
    value = scores([sample["csr"]])["csr"]
    return [None if value is None else value / 100]


def judge_errors(items: list[int]) -> int:
    """Turns the judge could not judge, over all sessions."""
    return sum(items)


def unjudged_sessions(items: list[int | None]) -> int:
    """Sessions with a turn the judge could not judge (logged by id: judge them again)."""
    ids = [i for i in items if i is not None]
    if ids:
        log.warning("sysbench_multiturn: %d unjudged session(s): %s", len(ids), ids)
    return len(ids)


__all__ = [
    "METRICS",
    "SysBenchTask",
    "SystemMessageLost",
    "data_file",
    "document_scores",
    "flat",
    "judge_errors",
    "load_docs",
    "make_sysbench_judge",
    "scores",
    "session_doc",
    "unjudged_sessions",
    *METRICS,
]
