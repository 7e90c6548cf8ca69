"""The `multi_if` lm-eval task: 3 turns, each sent with the model's own earlier replies."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from rpo_bench import hub
from rpo_bench.evaluate.metrics import METRICS, prompt_score
from rpo_bench.evaluate.multi_if import data as multi_if
from rpo_bench.evaluate.multiturn_task import MultiTurnTask
from rpo_bench.evaluate.preflight import MissingData
from rpo_bench.evaluate.verifiable import constraints_for, score
from rpo_bench.paths import data_dir
from rpo_bench.rollout.multiturn import Conversation

HUB_DATASET = "facebook/Multi-IF"
FILE_NAME = "multiIF_20241018.csv"


def data_file(data_file: str | None = None) -> Path | None:
    """--metadata data_file, else $RPO_BENCH_DATA/multi_if/<file>, else None (the hub)."""
    if data_file:
        return Path(data_file)
    root = data_dir()
    local = root / "multi_if" / FILE_NAME if root else None
    return local if local and local.exists() else None


def _missing(cause: str) -> MissingData:
    return MissingData(
        f"Multi-IF data not found: no local copy and the hub dataset {HUB_DATASET} could "
        f"not be loaded ({cause}). Put {FILE_NAME} in "
        f"$RPO_BENCH_DATA/multi_if/ (RPO_BENCH_DATA={os.environ.get('RPO_BENCH_DATA')}) "
        'or pass --metadata \'{"data_file": "/path/to/file.csv"}\'.'
    )


@functools.cache  # one download and one check for the eight language tasks
def _hub_rows() -> list[tuple[int, dict[str, Any]]]:
    """The hub copy's rows, numbered as the CSV's lines."""
    import datasets

    offline = datasets.config.HF_HUB_OFFLINE
    # Offline, `datasets` reads its own cache and fails at once; online, an unreachable hub
    # costs ~30 s of retries before the same failure, so one quick try comes first.
    if not offline and not hub.reachable():
        raise _missing(
            f"{datasets.config.HF_ENDPOINT} unreachable; for a cached copy set HF_HUB_OFFLINE=1"
        )
    try:
        rows = datasets.load_dataset(HUB_DATASET, split="train")
    except Exception as err:  # offline with no cached copy, gated, or missing
        cause = f"HF_HUB_OFFLINE is set and no copy is cached: {type(err).__name__}"
        raise _missing(cause if offline else type(err).__name__) from err
    return list(enumerate(rows, 2))


def check_data(data_file: str | None = None, **_: Any) -> None:
    """MissingData now (before a model loads) if neither a local copy nor the hub's is at hand."""
    if globals()["data_file"](data_file) is None:
        _hub_rows()


def load_docs(language: str | None = None, data_file: str | None = None, **_: Any) -> dict:
    """Rows (every field a string, as the CSV holds them), validated, of one language or all."""
    import datasets

    path = globals()["data_file"](data_file)
    numbered = multi_if.read_rows(path) if path is not None else _hub_rows()
    source = str(path) if path is not None else HUB_DATASET
    rows = []
    for number, raw in numbered:
        conv = multi_if.parse_row(raw, source, f"line {number}")  # bad rows fail here, named
        if language is None or conv.language == language:
            rows.append({c: "" if raw.get(c) is None else str(raw[c]) for c in multi_if.COLUMNS})
    if not rows:
        raise ValueError(f"{source}: no conversations in language {language!r}")
    return {"test": datasets.Dataset.from_list(rows)}


class MultiIFTask(MultiTurnTask):
    # Multi-IF's vLLM inference stores `output.text.strip()` as the reply: the stripped
    # text is what the next turn's history holds and what is scored.
    strip_replies = True

    def to_conversation(self, doc: dict) -> Conversation:
        conv = multi_if.parse_row(doc, self.config.task, "doc")
        return Conversation(conv.key, [t.prompt if t else None for t in conv.turns])

    def process_results(self, doc: dict, results: list[str]) -> dict[str, Any]:
        conv = multi_if.parse_row(doc, self.config.task, "doc")
        replies = self.replies(doc, results)
        out: dict[str, Any] = {}
        for (k, turn), reply in zip(conv.present(), replies, strict=True):
            # Multi-IF detects each reply's language for its word and sentence rules.
            metrics = score(constraints_for(turn.instruction_ids, turn.kwargs, "auto"), reply)
            out |= {f"turn_{k}_{level}": metrics[level] for level in METRICS}
            out[f"turn_{k}_overall"] = tuple(metrics[level] for level in METRICS)
        return out


def document_scores(sample: dict[str, Any]) -> list[float | None]:
    """One logged lm-eval sample (a conversation) as one score per turn it has: the mean
    of the turn's four metrics (`metrics.prompt_score`), the unit the report pairs."""
    turns = sorted({int(k.split("_")[1]) for k in sample if k.startswith("turn_")})
    return [prompt_score({m: sample[f"turn_{k}_{m}"] for m in METRICS}) for k in turns]
