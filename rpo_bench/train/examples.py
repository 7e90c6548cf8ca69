"""Preference pairs: read a pairs file and validate each row (errors name file:line and
field). The checks every example shares (`check_row`, `check_prompt`) serve SFT/KTO rows
too (`unpaired`).

An input-side pair (IOPO) carries a `rejected_prompt`: the same reply, preferred under
`prompt` over `rejected_prompt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpo_bench.fields import field_error
from rpo_bench.jsonl import iter_rows, no_rows

Message = dict[str, str]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Pair:
    id: str
    prompt: list[Message]
    chosen: str
    rejected: str
    margin: int
    rejected_prompt: list[Message] | None = None  # input-side pairs: the rejected's own prompt


def turn_of(example_id: str) -> str:
    """The turn an example's id names: pairs/ writes `<turn id>/<its replies>`; an id without
    a `/` is a turn of its own."""
    return example_id.rsplit("/", 1)[0]


def check_row(
    row: dict[str, Any], where: str, replies: tuple[str, ...], other: tuple[str, ...] = ()
) -> list[Message]:
    """Validate the fields every example has (id, prompt), its reply strings and that the
    `other` fields are present; returns the prompt. Errors name `where` and the field."""

    for name in ("id", "prompt", *replies, *other):
        if name not in row:
            raise field_error(where, name, "is missing")
    if not isinstance(row["id"], str | int) or isinstance(row["id"], bool):
        raise field_error(where, "id", "must be a string or an integer")
    prompt = check_prompt(row["prompt"], where, "prompt")
    for name in replies:
        if not isinstance(row[name], str) or not row[name].strip():
            raise field_error(where, name, "must be a non-empty string")
    return prompt


def check_prompt(prompt: Any, where: str, field: str) -> list[Message]:
    """A chat prompt ending with the user message the reply answers; a copy."""
    if not isinstance(prompt, list) or not prompt:
        raise field_error(where, field, "must be a non-empty list of chat messages")
    for i, m in enumerate(prompt):
        if not (
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
        ):
            shape = f"must be {{'role': one of {ROLES}, 'content': str}}"
            raise field_error(where, f"{field}[{i}]", shape)
    if prompt[-1]["role"] != "user":
        raise field_error(where, field, "must end with a user message (the reply answers it)")
    return [dict(m) for m in prompt]


def _check(row: dict[str, Any], where: str) -> Pair:
    prompt = check_row(row, where, ("chosen", "rejected"), ("margin",))
    margin = row["margin"]
    if not isinstance(margin, int) or isinstance(margin, bool) or margin < 0:
        raise field_error(where, "margin", f"must be an integer >= 0, got {margin!r}")
    rejected_prompt = None
    if "rejected_prompt" in row:  # an input-side pair; `chosen_prompt`, if given, is `prompt`
        rejected_prompt = check_prompt(row["rejected_prompt"], where, "rejected_prompt")
        if "chosen_prompt" in row and row["chosen_prompt"] != row["prompt"]:
            raise field_error(
                where, "chosen_prompt", "must equal 'prompt' (the chosen reply's prompt)"
            )
    elif "chosen_prompt" in row:
        raise field_error(where, "rejected_prompt", "is missing (the row has a 'chosen_prompt')")
    return Pair(str(row["id"]), prompt, row["chosen"], row["rejected"], margin, rejected_prompt)


def nothing_to_train(path: str | Path, what: str) -> ValueError:
    """The error for a pairs file without rows. Always an error (`train` has no
    `--allow-empty`): training on no examples cannot make a model."""
    return ValueError(
        f"{no_rows(path, what)}; training needs at least one, so train has no --allow-empty"
    )


def read_pairs(path: str | Path) -> list[Pair]:
    """Validated pairs; errors name file:line and the field. An empty file is an error."""
    pairs = [_check(row, f"{path}:{line}") for line, row in iter_rows(path)]
    if not pairs:
        raise nothing_to_train(path, "preference pairs")
    return pairs
