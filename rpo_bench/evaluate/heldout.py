"""The study's own held-out task: greedy replies to held-out multi-turn conversations (the
model's own history), scored per turn: verifiable constraints by their checkers, free-text
ones by an LLM judge's verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rpo_bench.evaluate.metrics import METRICS
from rpo_bench.evaluate.verifiable import score, score_verdicts
from rpo_bench.rollout.settings import GenerationSettings


def play(
    conversations: Path, backend: Any, settings: GenerationSettings, judge: Any = None
) -> list[dict[str, Any]]:
    """A row per turn: key, reply and the four metrics. With a `judge` (free text), each
    reply is judged as it is sampled, strict and loose alike; a turn it could not judge is
    scored None and counted (`unjudged`), and keeps its row, so every model's per-prompt
    scores line up."""
    from rpo_bench.constraints import any_from_dict
    from rpo_bench.data.conversations import read_conversations
    from rpo_bench.data.sample import sample

    rows = sample(read_conversations(conversations), backend, settings, judge=judge,
                  history="first")  # fmt: skip
    out = []
    for row in rows:
        reply = row["responses"][0]["text"]
        if judge is None:
            constraints = [any_from_dict(c) for c in row["constraints"]]
            out.append({"key": row["id"], "reply": reply, **score(constraints, reply)})
            continue
        verdicts = row["responses"][0]["verdicts"]
        if verdicts is None:  # unjudged: neither a pass nor a fail
            out.append({"key": row["id"], "reply": reply, "unjudged": True,
                        **dict.fromkeys(METRICS)})  # fmt: skip
        else:
            out.append({"key": row["id"], "reply": reply, **score_verdicts(verdicts)})
    return out
