"""SFT and KTO examples: read and validate pairs-file rows of kind `sft` / `kto`, tokenize
them, and give each KTO example the mismatched reply its KL reference point is scored on.

A row: `{"id", "kind": "sft"|"kto", "prompt": [messages], "response": str,
"desirable": bool (kto)}`; other fields are ignored. Each example is tokenized as
`tokenize.Encoded` with the response as its chosen reply (`Encoded.response_ids`), so the
pair machinery (batching, shared-prompt rows, reference pass, scorer) serves it unchanged.
The rejected reply is empty for SFT; for KTO it is filled per batch (`mismatched`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpo_bench.fields import field_error
from rpo_bench.jsonl import iter_rows
from rpo_bench.train.examples import Message, check_row, nothing_to_train
from rpo_bench.train.tokenize import Encoded, Tokenized, fit

KINDS = ("preference", "sft", "kto")


@dataclass(frozen=True)
class Single:
    id: str
    prompt: list[Message]
    response: str
    desirable: bool | None = None  # KTO's label


def file_kind(path: str | Path) -> str:
    """The kind of a pairs file's examples, from its first row (no `kind`: preference)."""
    for line, row in iter_rows(path):
        kind = row.get("kind", "preference")
        if kind not in KINDS:
            raise field_error(f"{path}:{line}", "kind", f"must be one of {KINDS}, got {kind!r}")
        return kind
    raise nothing_to_train(path, "training examples")


def _check(row: dict[str, Any], where: str, kind: str) -> Single:
    if row.get("kind") != kind:
        raise field_error(where, "kind", f"must be {kind!r} like the first row's")
    prompt = check_row(row, where, ("response",), ("desirable",) if kind == "kto" else ())
    desirable = row.get("desirable")
    if kind == "kto" and not isinstance(desirable, bool):
        raise field_error(where, "desirable", f"must be true or false, got {desirable!r}")
    return Single(str(row["id"]), prompt, row["response"], desirable)


def read_single(path: str | Path, kind: str) -> list[Single]:
    """Validated SFT or KTO examples; errors name file:line and the field."""
    rows = [_check(row, f"{path}:{line}", kind) for line, row in iter_rows(path)]
    if not rows:
        raise nothing_to_train(path, f"{kind} examples")
    return rows


def tokenize_single(rows: list[Single], tokenizer: Any, max_length: int) -> Tokenized:
    """Prompts shortened as for pairs; a response alone longer than max_length is dropped."""
    out, truncated, dropped = [], 0, 0
    for index, row in enumerate(rows):
        fitted = fit(tokenizer, row.prompt, (row.response,), max_length)
        if fitted is None:
            dropped += 1
            continue
        p, (response,), shortened = fitted
        out.append(Encoded(index, p, response, [], 0, shortened, row.desirable))
        truncated += shortened
    if not out:
        raise ValueError(f"no example fits max_length={max_length}, even without its earlier turns")
    return Tokenized(out, truncated, dropped)


def mismatched(batch: list[Encoded], max_length: int) -> list[Encoded]:
    """KTO's KL pairs, as TRL builds them: the responses rotated by one within the batch,
    (x_1, y_n), (x_2, y_1), ..., (x_n, y_{n-1}); a mismatched response is cut at its end to
    fit max_length (TRL truncates its KL sequences the same way). A batch of one pairs an
    example with itself."""
    rotated = [batch[-1].response_ids, *(e.response_ids for e in batch[:-1])]
    return [  # scored in the rejected reply's place
        dataclasses.replace(e, rejected_ids=y[: max_length - len(e.prompt_ids)])
        for e, y in zip(batch, rotated, strict=True)
    ]
