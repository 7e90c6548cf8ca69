"""Multi-IF (He et al. 2024): load its conversations and score multi-turn replies.

A conversation has up to three user turns. Turn k's instruction list repeats every
earlier instruction (the lists are cumulative in the data), and turn k's reply is
checked against that list alone. Checks use the constraint library with
language="auto", which detects each reply's language as Multi-IF does and applies its
word, sentence and quotation rules. A skipped turn (empty or "None" prompt cell, as the
56 rows without a turn 3 have) is left out of every count.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rpo_bench.constraints import INSTRUCTION_IDS, from_ifeval
from rpo_bench.evaluate.verifiable import constraints_for, score
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


class Turn(NamedTuple):
    """One user turn: its text and the (cumulative) instructions its reply must follow."""

    prompt: str
    instruction_ids: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Conversation:
    """One Multi-IF row; `turns[k - 1]` is None where turn k was skipped."""

    key: str
    language: str
    turns: tuple[Turn | None, ...]
    where: str  # "file: row 'key' (line n)", for error messages

    def present(self) -> list[tuple[int, Turn]]:
        """(turn number, turn) for every turn that was not skipped."""
        return [(k, t) for k, t in enumerate(self.turns, 1) if t is not None]


def load_conversations(path: str | Path) -> list[Conversation]:
    """Multi-IF conversations from its CSV, or from JSONL rows with the same string fields."""
    return _parse_all(read_rows(path), str(path), "line")[0]


def score_rows(
    rows: Iterable[Mapping[str, Any]], *, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Score Multi-IF rows that carry `responses` (one reply per turn, "" for a skipped turn).

    Returns per-row verdicts, per-turn metrics by language (plus all_languages, pooled, and
    average, the unweighted mean over languages) and, under "ci95", seeded 95% bootstrap
    intervals for each turn's overall score.
    """
    return _score(list(enumerate(rows, 1)), "input", "row", resamples, seed)


def score_file(path: str | Path, *, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """`score_rows` on a CSV or JSONL file; errors name the file's line."""
    return _score(read_rows(path), str(path), "line", resamples, seed)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `multi-if-score --input FILE` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "multi-if-score",
        help="score Multi-IF replies (JSONL or CSV rows with a responses field)",
        description=score_rows.__doc__,
    )
    p.add_argument("--input", required=True, help="Multi-IF rows plus responses (JSONL or CSV)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for ci95")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_cli)
    return p


def _cli(args: argparse.Namespace) -> None:
    result = score_file(args.input, resamples=args.resamples, seed=args.seed)
    print(json.dumps(result, ensure_ascii=False, indent=2))


# ---- reading -------------------------------------------------------------------------


def read_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, raw row) pairs; CSV by suffix, JSON Lines otherwise."""
    if Path(path).suffix.lower() != ".csv":
        return list(iter_rows(path))
    rows: list[tuple[int, dict[str, Any]]] = []
    # utf-8-sig: a CSV saved by a spreadsheet may start with a byte-order mark.
    with open(path, encoding="utf-8-sig", newline="") as f:
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
            raise ValueError(f"{conv.where}: field 'key': duplicate of {seen[conv.key]}")
        seen[conv.key] = f"{unit} {number}"
        conversations.append(conv)
    return conversations, [raw for _, raw in rows]


def parse_row(raw: Mapping[str, Any], source: str, locus: str) -> Conversation:
    key = raw.get("key")
    where = f"{source}: row {key!r} ({locus})"

    def fail(field: str, message: str) -> ValueError:
        return ValueError(f"{where}: field {field!r}: {message}")

    if not isinstance(key, str) or not key.strip():
        raise fail("key", f"must be a non-empty string, got {key!r}")
    language = raw.get("language")
    if not isinstance(language, str) or not language.strip():
        raise fail("language", f"must be a non-empty string, got {language!r}")
    if language in (ALL, AVERAGE):
        raise fail("language", f"{language!r} is reserved for the pooled scores")

    turns = [_parse_turn(raw, k, fail) for k in TURNS]
    if turns[0] is None:
        raise fail("turn_1_prompt", "every conversation needs a turn 1")
    for k in TURNS[1:]:
        # Turn k is sent with the replies to every earlier turn, so none may be missing.
        if turns[k - 1] is not None and turns[k - 2] is None:
            raise fail(f"turn_{k - 1}_prompt", f"turn {k - 1} is missing but turn {k} is not")
    return Conversation(key, language, tuple(turns), where)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in _BLANK)


def _decode(value: Any, field: str, fail: Any) -> Any:
    """A JSON-encoded cell; an already-decoded value passes through."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise fail(field, f"not valid JSON ({err.msg})") from err


def _parse_turn(raw: Mapping[str, Any], k: int, fail: Any) -> Turn | None:
    p_field, id_field, kw_field = (f"turn_{k}_{f}" for f in TURN_FIELDS)
    cell = raw.get(p_field)
    if _is_blank(cell):
        return None  # a skipped turn: its other cells are not read
    message = _decode(cell, p_field, fail)
    if message is None:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("content"), str):
        raise fail(p_field, 'must be a JSON object {"role": "user", "content": "..."}')

    ids = _decode(raw.get(id_field), id_field, fail)
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise fail(id_field, f"must be a non-empty JSON list of instruction ids, got {ids!r}")
    for i, iid in enumerate(ids):
        if iid not in INSTRUCTION_IDS:
            raise fail(id_field, f"item {i}: unknown instruction id {iid!r}")

    items = _decode(raw.get(kw_field), kw_field, fail)
    if not isinstance(items, list):
        raise fail(kw_field, f"must be a JSON list of JSON-encoded objects, got {items!r}")
    if len(items) != len(ids):
        raise fail(kw_field, f"{len(items)} entries for {len(ids)} instruction ids")
    kwargs = []
    for i, (iid, item) in enumerate(zip(ids, items, strict=True)):
        try:
            kw = json.loads(item) if isinstance(item, str) else item
        except json.JSONDecodeError as err:
            raise fail(kw_field, f"item {i}: not valid JSON ({err.msg})") from err
        kw = {} if kw is None else kw
        if not isinstance(kw, dict):
            raise fail(kw_field, f"item {i} must encode a JSON object, got {item!r}")
        try:
            from_ifeval(iid, kw, language="auto")  # validates the kwargs now, not mid-scoring
        except ValueError as err:
            raise fail(kw_field, f"item {i}: {err}") from err
        kwargs.append(kw)
    return Turn(message["content"], tuple(ids), tuple(kwargs))


def _responses(raw: Mapping[str, Any], conv: Conversation) -> list[str]:
    """The reply to each turn ("" where the turn was skipped)."""

    def fail(message: str) -> ValueError:
        return ValueError(f"{conv.where}: field 'responses': {message}")

    value = raw.get("responses")
    if value is None or isinstance(value, str) and not value.strip():
        raise fail("missing or empty; it must list one reply per turn")
    if isinstance(value, str):  # a CSV cell holds the list JSON-encoded
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise fail(f"not valid JSON ({err.msg})") from err
    if not isinstance(value, list) or len(value) > len(TURNS):
        raise fail(f"must be a list of at most {len(TURNS)} replies, got {value!r}")
    replies = [*value, *[""] * (len(TURNS) - len(value))]
    for k, turn in enumerate(conv.turns, 1):
        reply = replies[k - 1]
        if turn is None:
            # A reply to a turn that does not exist means the list is misaligned.
            if reply not in ("", None):
                raise fail(f"turn {k} was skipped but has a reply")
            replies[k - 1] = ""
        elif k > len(value):
            raise fail(f"turn {k} needs a reply, but the list has {len(value)}")
        elif not isinstance(reply, str):
            raise fail(f"turn {k} needs a reply (a string), got {reply!r}")
    return replies


# ---- scoring -------------------------------------------------------------------------

# Per scored turn: prompt passes (strict), instruction passes (strict), the same two loose,
# instruction count, and 1 (the turn). Sums of these give every metric.
_PS, _IS, _PL, _IL, _NI, _N = range(6)


def _counts(strict: list[bool], loose: list[bool]) -> list[int]:
    return [int(all(strict)), sum(strict), int(all(loose)), sum(loose), len(strict), 1]


def _accuracies(totals: np.ndarray) -> np.ndarray:
    """The four accuracies then overall, from summed counts (last axis), batched or not."""
    t = totals.astype(float)
    acc = np.stack(
        [
            t[..., _PS] / t[..., _N],
            t[..., _IS] / t[..., _NI],
            t[..., _PL] / t[..., _N],
            t[..., _IL] / t[..., _NI],
        ],
        axis=-1,
    )
    return np.concatenate([acc, acc.mean(axis=-1, keepdims=True)], axis=-1)


def _as_dict(values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip((*METRICS, "overall"), values, strict=True)}


def _score(
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    source: str,
    unit: str,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    conversations, raws = _parse_all(rows, source, unit)
    out_rows = []
    # turn -> language -> per-conversation count vectors
    groups: dict[int, dict[str, list[list[int]]]] = {k: {} for k in TURNS}
    for conv, raw in zip(conversations, raws, strict=True):
        replies = _responses(raw, conv)
        turns = []
        for k, turn in conv.present():
            verdict = score(
                constraints_for(turn.instruction_ids, turn.kwargs, "auto"), replies[k - 1]
            )
            strict, loose = verdict["inst_level_strict_acc"], verdict["inst_level_loose_acc"]
            turns.append({"turn": k, "strict": strict, "loose": loose})
            groups[k].setdefault(conv.language, []).append(_counts(strict, loose))
        out_rows.append({"key": conv.key, "turns": turns})

    rng = np.random.default_rng(seed)
    by_turn, ci_by_turn = {}, {}
    for k in TURNS:
        if not groups[k]:
            continue
        table, ci = {}, {}
        samples = {}
        for language in sorted(groups[k]):
            items = np.array(groups[k][language])
            table[language] = _as_dict(_accuracies(items.sum(axis=0)))
            # Stratified: each language keeps its size, as the unweighted average assumes.
            picks = rng.integers(0, len(items), size=(resamples, len(items)))
            samples[language] = items[picks].sum(axis=1)
            ci[language] = _interval(_accuracies(samples[language])[:, -1])
        pooled = np.array([c for lang in groups[k].values() for c in lang]).sum(axis=0)
        table[ALL] = _as_dict(_accuracies(pooled))
        table[AVERAGE] = _as_dict(np.mean([list(table[lang].values()) for lang in samples], axis=0))
        ci[ALL] = _interval(_accuracies(sum(samples.values()))[:, -1])
        ci[AVERAGE] = _interval(np.mean([_accuracies(s)[:, -1] for s in samples.values()], axis=0))
        by_turn[str(k)], ci_by_turn[str(k)] = table, ci
    return {
        "rows": out_rows,
        "turns": by_turn,
        "ci95": {
            "method": "percentile bootstrap over conversations, resampled within each language",
            "resamples": resamples,
            "seed": seed,
            "turns": ci_by_turn,
        },
    }


def _interval(values: np.ndarray) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]
