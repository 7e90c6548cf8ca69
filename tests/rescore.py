"""Re-scoring of logged replies, for tests that check a run's reported aggregates exactly.

Each reply is scored again, outside the run, with rpo_bench's per-document scorers
(rpo_bench.evaluate.verifiable / .ifbench / .multi_if, each tested on its own against
lm-eval's or the official checkers) on the document as the vendored data file holds it;
the aggregates are then computed here by hand. A test asserts the run's reported numbers
equal these to within TOL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from rpo_bench.evaluate import ifbench, multi_if
from rpo_bench.evaluate.verifiable import constraints_for, read_jsonl, score
from rpo_bench.paths import resource

TOL = 1e-9
LEVELS = (
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
)
FILES = {
    "ifeval_local": ("ifeval", "input_data.jsonl"),
    "ifbench": ("ifbench", "IFBench_test.jsonl"),
}
_DOCS: dict[str, dict[str, dict]] = {}
ASSISTANT = "<|im_start|>assistant\n"
END = "<|im_end|>"


def doc(task: str, key: Any) -> dict[str, Any]:
    """The document of `task` with this key, read from the vendored file (not the log)."""
    if task not in _DOCS:
        _DOCS[task] = {str(row["key"]): row for row in read_jsonl(resource(*FILES[task]))}
    return _DOCS[task][str(key)]


def score_reply(task: str, key: Any, reply: str) -> dict[str, Any]:
    """The per-document metrics of `reply` to document `key` of ifeval_local or ifbench."""
    d = doc(task, key)
    if task == "ifeval_local":
        return score(constraints_for(d["instruction_id_list"], d["kwargs"]), reply)
    if task == "ifbench":
        return ifbench.score(d["instruction_id_list"], d["kwargs"], d["prompt"], reply)
    raise ValueError(task)


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def aggregate(per_doc: Sequence[dict[str, Any]]) -> dict[str, float]:
    """IFEval's four metrics over documents: prompt-level the mean over documents (those with
    a None left out), instruction-level pooled over all documents' instructions."""
    out = {}
    for level in LEVELS:
        if level.startswith("prompt"):
            out[level] = mean([float(d[level]) for d in per_doc if d[level] is not None])
        else:
            out[level] = mean([float(x) for d in per_doc for x in d[level]])
    for count in ("inst_level_unavailable", "prompt_level_unavailable"):
        if all(count in d for d in per_doc):
            out[count] = sum(d[count] for d in per_doc)
    return out


def rescore_samples(task: str, samples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Aggregates recomputed from lm-eval's logged samples of a single-turn task. Also checks
    each sample's logged per-document metrics equal the re-scoring."""
    per_doc = []
    for s in samples:
        (reply,) = s["filtered_resps"]
        again = score_reply(task, s["doc"]["key"], reply)
        assert {k: s[k] for k in again} == again, (task, s["doc"]["key"])
        per_doc.append(again)
    return aggregate(per_doc)


def close(got: float, want: float) -> bool:
    """Equal to within TOL; NaN only where NaN is expected."""
    if math.isnan(want):
        return math.isnan(got)
    return abs(got - want) <= TOL


def assert_metrics_equal(reported: dict[str, Any], expected: dict[str, float], suffix=",none"):
    """lm-eval's reported metrics are exactly the expected ones (names, and values to within
    TOL; NaN only where NaN is expected)."""
    names = {k.removesuffix(suffix) for k in reported if k.endswith(suffix) and "_stderr" not in k}
    assert names == set(expected), names ^ set(expected)
    for name, value in expected.items():
        got = reported[f"{name}{suffix}"]
        assert close(got, value), (name, got, value)


# --- Multi-IF -------------------------------------------------------------------------------


def multi_if_replies(sample: dict[str, Any], render: Callable[[list[dict]], str]) -> list[str]:
    """Every turn's reply of a logged multi_if sample: the earlier ones as the final prompt
    holds them, then the final reply. `render` (messages -> prompt, the model's chat template)
    must give back the logged prompt exactly from them, so none was cut or altered."""
    args = sample["arguments"]
    prompt = args["gen_args_0"]["arg_0"] if isinstance(args, dict) else args[0][0]
    earlier = [block.split(END)[0] for block in prompt.split(ASSISTANT)[1:-1]]
    conv = multi_if.parse_row(sample["doc"], "sample", "doc")
    turns = [t.prompt for _, t in conv.present()]
    assert len(earlier) == len(turns) - 1
    messages = []
    for user, reply in zip(turns, [*earlier, None], strict=True):
        messages.append({"role": "user", "content": user})
        if reply is not None:
            messages.append({"role": "assistant", "content": reply})
    assert render(messages) == prompt
    (final,) = sample["filtered_resps"]
    return [*earlier, final.strip()]  # the task scores the stripped reply


def rescore_multi_if(
    samples: Sequence[dict[str, Any]], render: Callable[[list[dict]], str]
) -> dict[str, float]:
    """Per-turn metrics (lm-eval names, no filter suffix) recomputed by
    rpo_bench.evaluate.multi_if.score_rows from the logged replies, pooled over languages."""
    rows = [s["doc"] | {"responses": multi_if_replies(s, render)} for s in samples]
    scored = multi_if.score_rows(rows, resamples=1)
    # Each sample's logged per-turn instruction verdicts are the re-scored ones.
    for s, row in zip(samples, scored["rows"], strict=True):
        for t in row["turns"]:
            k = t["turn"]
            assert s[f"turn_{k}_inst_level_strict_acc"] == t["strict"]
            assert s[f"turn_{k}_inst_level_loose_acc"] == t["loose"]
    names = dict(zip(multi_if.METRICS, LEVELS, strict=True)) | {"overall": "overall"}
    return {
        f"turn_{k}_{names[m]}": v
        for k, table in scored["turns"].items()
        for m, v in table[multi_if.ALL].items()
    }
