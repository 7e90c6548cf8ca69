"""Multi-IF (He et al. 2024) data: its conversations, read and validated.

A conversation has up to three user turns. Turn k's instruction list repeats every
earlier instruction (the lists are cumulative in the data), and turn k's reply is
checked against that list alone. Checks use the constraint library with
language="auto", which detects each reply's language as Multi-IF does and applies its
word, sentence and quotation rules. A skipped turn (empty or "None" prompt cell, as the
56 rows without a turn 3 have) is left out of every count.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from rpo_bench.constraints import INSTRUCTION_IDS, from_ifeval
from rpo_bench.fields import Field, field_error
from rpo_bench.files import read_text
from rpo_bench.jsonl import iter_rows

TURNS = (1, 2, 3)
TURN_FIELDS = ("prompt", "instruction_id_list", "kwargs")
COLUMNS = ("key", "language", *(f"turn_{k}_{f}" for k in TURNS for f in TURN_FIELDS))
METRICS = (
    "prompt_level_strict",
    "instruction_level_strict",
    "prompt_level_loose",
    "instruction_level_loose",
)
ALL, AVERAGE = "all_languages", "average"
# Cells that mean "no such turn": empty in the CSV, None/NaN after a pandas round trip.
_BLANK = {"", "none", "null", "nan"}


class MultiIfTurn(NamedTuple):
    """One user turn: its text and the (cumulative) instructions its reply must follow."""

    prompt: str
    instruction_ids: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Conversation:
    """One Multi-IF row; `turns[k - 1]` is None where turn k was skipped."""

    key: str
    language: str
    turns: tuple[MultiIfTurn | None, ...]
    where: str  # "file: row 'key' (line n)", for error messages

    def present(self) -> list[tuple[int, MultiIfTurn]]:
        """(turn number, turn) for every turn that was not skipped."""
        return [(k, t) for k, t in enumerate(self.turns, 1) if t is not None]


def load_conversations(path: str | Path) -> list[Conversation]:
    """Multi-IF conversations from its CSV, or from JSONL rows with the same string fields."""
    return _parse_all(read_rows(path), str(path), "line")[0]


def read_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, raw row) pairs; CSV by suffix, JSON Lines otherwise."""
    if Path(path).suffix.lower() != ".csv":
        return list(iter_rows(path))
    rows: list[tuple[int, dict[str, Any]]] = []
    # read_text drops the byte-order mark a spreadsheet may write, and names bad bytes' line
    with io.StringIO(read_text(path), newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
        start = reader.line_num + 1
        for record in reader:
            if record:  # csv yields [] for a blank line
                if len(record) != len(header):
                    raise ValueError(
                        f"{path}: line {start}: {len(record)} cells, "
                        f"but the header has {len(header)}"
                    )
                rows.append((start, dict(zip(header, record, strict=True))))
            start = reader.line_num + 1  # a quoted cell may span several lines
    return rows


def _parse_all(
    rows: Sequence[tuple[int, Mapping[str, Any]]], source: str, unit: str
) -> tuple[list[Conversation], list[Mapping[str, Any]]]:
    if not rows:
        raise ValueError(f"{source}: no conversations")
    conversations, seen = [], {}
    for number, raw in rows:
        if not isinstance(raw, Mapping):
            raise ValueError(f"{source}: {unit} {number}: a row must be a mapping of fields")
        conv = parse_row(raw, source, f"{unit} {number}")
        if conv.key in seen:
            raise field_error(conv.where, "key", f"is a duplicate of {seen[conv.key]}")
        seen[conv.key] = f"{unit} {number}"
        conversations.append(conv)
    return conversations, [raw for _, raw in rows]


def parse_row(raw: Mapping[str, Any], source: str, locus: str) -> Conversation:
    key = raw.get("key")
    where = f"{source}: row {key!r} ({locus})"
    at = Field(where)
    if not isinstance(key, str) or not key.strip():
        raise at("key").error(f"must be a non-empty string, got {key!r}")
    language = raw.get("language")
    if not isinstance(language, str) or not language.strip():
        raise at("language").error(f"must be a non-empty string, got {language!r}")
    if language in (ALL, AVERAGE):
        raise at("language").error(f"is {language!r}, a name reserved for the pooled scores")

    turns = [_parse_turn(raw, k, at) for k in TURNS]
    if turns[0] is None:
        raise at("turn_1_prompt").error("is empty: every conversation needs a turn 1")
    for k in TURNS[1:]:
        # Turn k is sent with the replies to every earlier turn, so none may be missing.
        if turns[k - 1] is not None and turns[k - 2] is None:
            raise at(f"turn_{k - 1}_prompt").error(
                f"is empty: turn {k - 1} is missing but turn {k} is not"
            )
    return Conversation(key, language, tuple(turns), where)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in _BLANK)


def _decode(value: Any, at: Field) -> Any:
    """A JSON-encoded cell; an already-decoded value passes through."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise at.error(f"is not valid JSON ({err.msg})") from err


def _parse_turn(raw: Mapping[str, Any], k: int, at: Field) -> MultiIfTurn | None:
    p_field, id_field, kw_field = (f"turn_{k}_{f}" for f in TURN_FIELDS)
    cell = raw.get(p_field)
    if _is_blank(cell):
        return None  # a skipped turn: its other cells are not read
    message = _decode(cell, at(p_field))
    if message is None:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("content"), str):
        raise at(p_field).error('must be a JSON object {"role": "user", "content": "..."}')

    ids = _decode(raw.get(id_field), at(id_field))
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise at(id_field).error(f"must be a non-empty JSON list of instruction ids, got {ids!r}")
    for i, iid in enumerate(ids):
        if iid not in INSTRUCTION_IDS:
            raise at(id_field).error(f"has an unknown instruction id {iid!r} (item {i})")

    items = _decode(raw.get(kw_field), at(kw_field))
    if not isinstance(items, list):
        raise at(kw_field).error(f"must be a JSON list of JSON-encoded objects, got {items!r}")
    if len(items) != len(ids):
        raise at(kw_field).error(f"has {len(items)} entries for {len(ids)} instruction ids")
    kwargs = []
    for i, (iid, item) in enumerate(zip(ids, items, strict=True)):
        try:
            kw = json.loads(item) if isinstance(item, str) else item
        except json.JSONDecodeError as err:
            raise at(kw_field).error(f"item {i} is not valid JSON ({err.msg})") from err
        kw = {} if kw is None else kw
        if not isinstance(kw, dict):
            raise at(kw_field).error(f"item {i} must encode a JSON object, got {item!r}")
        try:
            from_ifeval(iid, kw, language="auto")  # validates the kwargs now, not mid-scoring
        except ValueError as err:
            raise at(kw_field).error(f"item {i} is invalid: {err}") from err
        kwargs.append(kw)
    return MultiIfTurn(message["content"], tuple(ids), tuple(kwargs))


def _responses(raw: Mapping[str, Any], conv: Conversation) -> list[str]:
    """The reply to each turn ("" where the turn was skipped)."""

    def fail(message: str) -> ValueError:
        return field_error(conv.where, "responses", message)

    value = raw.get("responses")
    if value is None or isinstance(value, str) and not value.strip():
        raise fail("is missing or empty; it must list one reply per turn")
    if isinstance(value, str):  # a CSV cell holds the list JSON-encoded
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise fail(f"is not valid JSON ({err.msg})") from err
    if not isinstance(value, list) or len(value) > len(TURNS):
        raise fail(f"must be a list of at most {len(TURNS)} replies, got {value!r}")
    replies = [*value, *[""] * (len(TURNS) - len(value))]
    for k, turn in enumerate(conv.turns, 1):
        reply = replies[k - 1]
        if turn is None:
            # A reply to a turn that does not exist means the list is misaligned.
            if reply not in ("", None):
                raise fail(f"is misaligned: turn {k} was skipped but has a reply")
            replies[k - 1] = ""
        elif k > len(value):
            raise fail(f"is too short: turn {k} needs a reply, but the list has {len(value)}")
        elif not isinstance(reply, str):
            raise fail(f"is wrong: turn {k} needs a reply (a string), got {reply!r}")
    return replies
