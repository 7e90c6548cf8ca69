"""SysBench data: sessions (`sysbench_eval.jsonl`) and judge labels
(`judge_labels/<model>.jsonl`, schema in the data README), read and validated (errors name
file:line and field); where the session file is found or downloaded; the upstream schema
converted. SysBench declares no licence: its data is never vendored or committed.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpo_bench import paths
from rpo_bench.constraints.text import Criterion
from rpo_bench.fields import Field, field_error
from rpo_bench.jsonl import iter_rows, write_jsonl

N_ROUNDS = 5
ALIGNMENTS = ("align", "misalign")
# The six constraint types as the data names them, in the paper's order, with English aliases.
TYPE_ALIASES = {
    "动作约束": "action",
    "内容约束": "content",
    "背景约束": "background",
    "角色约束": "role",
    "格式约束": "format",
    "风格约束": "style",
}
# CSR / ISR / SSR (percent) published in the SysBench paper (model's own history), by label file.
PUBLISHED = {
    "gpt4o": (87.1, 76.4, 54.4),
    "gpt4_turbo_0409": (86.5, 76.6, 53.2),
    "qwen2_72b": (79.0, 64.2, 41.6),
    "llama3_70b": (76.6, 60.3, 36.6),
    "llama3_8b": (66.5, 46.9, 24.9),
    "qwen2_7b": (47.0, 26.9, 15.0),
}


@dataclass(frozen=True)
class SysbenchRound:
    round_index: int
    user: str
    alignment: str
    criteria: tuple[Criterion, ...]
    reference: str | None = None  # the data's ground-truth reply, where it has one


@dataclass(frozen=True)
class Session:
    system_id: int
    domain: str
    scene: str | None
    rounds_related: bool
    system_prompt: str
    turns: tuple[SysbenchRound, ...]


@dataclass(frozen=True)
class Label:
    """One judged turn. `source`/`line` locate it for error messages and take no part in ==."""

    model: str
    system_id: int
    round_index: int
    answer: str
    judge: str
    reasoning: str
    verdicts: dict[str, bool | None]
    verdicts_raw: dict[str, Any]
    all_pass: bool
    judge_error: bool = False
    source: str = field(default="", compare=False, repr=False)
    line: int = field(default=0, compare=False, repr=False)


# ---------------------------------------------------------------- loading


def _rows(path: str | Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line number, location "file:line", object) for each non-blank line of a JSON Lines file."""
    for number, row in iter_rows(path):
        yield number, f"{path}:{number}", row


def turns_of(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """A session row's `turns` (round_index, user, alignment, criteria): the row's own, or
    built from the upstream schema (messages + prompt_infos keyed by user text, criteria
    in id order). The one place the upstream schema becomes turns."""
    return row["turns"] if "turns" in row else _turns_from_official(row, where)


def _turns_from_official(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    at = Field(where)
    messages = at.of(row, "messages", list)
    infos = at.of(row, "prompt_infos", dict)
    turns: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "assistant" and turns:
            turns[-1]["reference"] = m.get("content")  # the upstream ground-truth reply
        if isinstance(m, dict) and m.get("role") == "user":
            info = infos.get(m.get("content"))
            if not isinstance(info, dict):
                raise at("prompt_infos").error("has no entry for a user message")
            criteria = at("prompt_infos").of(info, "criteria", dict)
            turns.append(
                {
                    "round_index": len(turns) + 1,
                    "user": m["content"],
                    "alignment": info.get("alignment"),
                    "criteria": sorted(criteria.values(), key=_criterion_order),
                }
            )
    return turns


def _criterion_order(c: Any) -> tuple[int, str]:
    cid = c.get("criteria_id") if isinstance(c, dict) else None
    return (int(cid), "") if isinstance(cid, int) or str(cid).isdigit() else (2**63, str(cid))


def _turn(raw: Any, index: int, at: Field) -> SysbenchRound:
    if not isinstance(raw, dict):
        raise at.error("must be an object")
    round_index = at.of(raw, "round_index", int)
    if round_index != index + 1:
        raise at("round_index").error(f"is {round_index}, expected {index + 1}")
    user = at.of(raw, "user", str)
    alignment = at.of(raw, "alignment", str)
    if alignment not in ALIGNMENTS:
        raise at("alignment").error(f"is {alignment!r}, not one of {ALIGNMENTS}")
    raw_criteria = at.of(raw, "criteria", list)
    if not raw_criteria:
        raise at("criteria").error("is empty")
    criteria = []
    for j, c in enumerate(raw_criteria):
        c_at = at("criteria")(j)
        if not isinstance(c, dict):
            raise c_at.error("must be an object")
        criteria.append(
            Criterion(
                id=c_at.of(c, "criteria_id", int),
                content=c_at.of(c, "criteria_content", str),
                type=c_at.of(c, "criteria_type", str),
            )
        )
    ids = [c.id for c in criteria]
    if len(set(ids)) != len(ids):
        raise at("criteria").error(f"repeats a criteria_id: {ids}")
    reference = raw.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise at("reference").error("must be a string or null")
    return SysbenchRound(round_index, user, alignment, tuple(criteria), reference)


def session_from_row(row: dict[str, Any], where: str) -> Session:
    """One session of `sysbench_eval.jsonl`: 5 rounds, each with >= 1 criterion.

    Uses the row's `turns` field, or rebuilds it from `messages` + `prompt_infos` (the
    upstream schema) when absent. `where` ("file:line") prefixes every error.
    """
    at = Field(where)
    raw_turns = turns_of(row, where)
    if not isinstance(raw_turns, list) or len(raw_turns) != N_ROUNDS:
        raise at("turns").error(f"must be a list of {N_ROUNDS} rounds")
    return Session(
        system_id=at.of(row, "system_id", int),
        domain=at.of(row, "domain", str),
        scene=at.of(row, "scene", (str, type(None))),
        rounds_related=at.of(row, "rounds_related", bool),
        system_prompt=at.of(row, "system_prompt", str),
        turns=tuple(_turn(t, i, at("turns")(i)) for i, t in enumerate(raw_turns)),
    )


def load_sessions(path: str | Path) -> list[Session]:
    """Sessions of `sysbench_eval.jsonl` (see `session_from_row`); system ids must not repeat."""
    sessions: list[Session] = []
    first_line: dict[int, str] = {}
    for _, where, row in _rows(path):
        system_id = Field(where).of(row, "system_id", int)
        if system_id in first_line:
            raise field_error(
                where, "system_id", f"repeats session {system_id} ({first_line[system_id]})"
            )
        first_line[system_id] = where
        sessions.append(session_from_row(row, where))
    if not sessions:
        raise ValueError(f"{path}: no sessions")
    return sessions


def label_from_row(row: dict[str, Any], where: str, source: str = "", line: int = 0) -> Label:
    """One judged turn (judge_labels schema); checks types and that all_pass fits verdicts.

    `judge_error: true` (optional) marks a turn whose judging failed: its verdicts may be
    empty and its all_pass (null in rows written by `rpo_bench.judge`) is ignored (see
    `score`).
    """
    at = Field(where)
    judge_error = at.of(row, "judge_error", bool) if "judge_error" in row else False
    verdicts = at.of(row, "verdicts", dict)
    for key, value in verdicts.items():
        if value is not None and not isinstance(value, bool):
            raise at("verdicts").error(
                f"value for {key!r} must be true, false or null, got {value!r}"
            )
    all_pass = at.of(row, "all_pass", (bool, type(None)) if judge_error else bool)
    # all_pass is defined as "no criterion judged false" (null does not fail a turn).
    failed = [k for k, v in verdicts.items() if v is False]
    if not judge_error and all_pass == bool(failed):
        detail = f"criteria {failed} judged false" if failed else "no criterion judged false"
        raise at("all_pass").error(f"is {str(all_pass).lower()} but {detail}")
    return Label(
        model=at.of(row, "model", str),
        system_id=at.of(row, "system_id", int),
        round_index=at.of(row, "round_index", int),
        answer=at.of(row, "answer", str),
        judge=at.of(row, "judge", str),
        reasoning=at.of(row, "reasoning", str),
        verdicts=verdicts,
        verdicts_raw=at.of(row, "verdicts_raw", dict),
        all_pass=bool(all_pass),
        judge_error=judge_error,
        source=source,
        line=line,
    )


def load_labels(path: str | Path) -> list[Label]:
    """Judge labels, one per (session, round), each checked by `label_from_row`."""
    labels = [label_from_row(row, where, str(path), number) for number, where, row in _rows(path)]
    if not labels:
        raise ValueError(f"{path}: no labels")
    return labels


def check_coverage(
    labels: Sequence[Label], sessions: Sequence[Session]
) -> dict[tuple[int, int], Label]:
    """Labels keyed by (system_id, round_index): one per turn, verdict ids = checklist ids."""
    if not labels:
        raise ValueError("no labels")
    by_id = {s.system_id: s for s in sessions}
    keyed: dict[tuple[int, int], Label] = {}
    model = labels[0].model
    for lab in labels:
        at = Field(f"{lab.source or 'labels'}:{lab.line}")
        if lab.model != model:
            raise at("model").error(f"differs: labels mix models {model!r} and {lab.model!r}")
        session = by_id.get(lab.system_id)
        if session is None:
            raise at("system_id").error(f"names an unknown session {lab.system_id}")
        if not 1 <= lab.round_index <= len(session.turns):
            raise at("round_index").error(
                f"is {lab.round_index}: session {lab.system_id} has no round {lab.round_index}"
            )
        key = (lab.system_id, lab.round_index)
        if key in keyed:
            raise at("round_index").error(
                f"repeats: second label for session {lab.system_id} "
                f"round {lab.round_index} (first at line {keyed[key].line})"
            )
        keyed[key] = lab
        if lab.judge_error:
            continue  # a failed judge call may have returned no verdicts at all
        expected = {str(c.id) for c in session.turns[lab.round_index - 1].criteria}
        got = set(lab.verdicts)
        if got != expected:
            missing, extra = sorted(expected - got, key=int), sorted(got - expected)
            raise at("verdicts").error(
                f"has ids that differ from the checklist of session {lab.system_id} "
                f"round {lab.round_index} (missing {missing}, unknown {extra})"
            )
    absent = [
        (s.system_id, t.round_index)
        for s in sessions
        for t in s.turns
        if (s.system_id, t.round_index) not in keyed
    ]
    if absent:
        source = labels[0].source or "labels"
        shown = ", ".join(f"session {sid} round {r}" for sid, r in absent[:5])
        more = ", ..." if len(absent) > 5 else ""
        raise ValueError(f"{source}: no label for {len(absent)} turns ({shown}{more})")
    return keyed


# ---------------------------------------------------------------- the data file

FILE_NAME = "sysbench_eval.jsonl"
UPSTREAM_REPO = "PKU-Baichuan-MLSystemLab/SysBench"
UPSTREAM_COMMIT = "627ffa8010d00e270426975b33b1fb7a0a635602"  # as ../shared/data/sysbench
UPSTREAM_URL = (
    f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}/"
    "datas/system_benchmark_eval_datas.json"
)


def from_upstream(rows: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """Upstream sessions (领域, 场景, messages with ground-truth replies, prompt_infos) in the
    local schema. The ground-truth replies stay in `messages` (as each turn's `reference`):
    the default history is the model's own replies, `history: reference` uses them."""
    out = []
    for i, row in enumerate(rows):
        where = f"{source}: session [{i}]"
        missing = [k for k in ("system_id", "领域", "rounds_related", "messages") if k not in row]
        if missing:
            raise field_error(where, missing[0], "is missing")
        messages = [m for m in row["messages"] if m.get("role") in ("system", "user", "assistant")]
        system = row.get("system_prompt") or next(
            (m["content"] for m in messages if m["role"] == "system"), None
        )
        out.append(
            {
                "system_id": row["system_id"],
                "domain": row["领域"],
                "scene": row.get("场景") or None,
                "rounds_related": row["rounds_related"],
                "system_prompt": system,
                "messages": messages,
                "prompt_infos": row.get("prompt_infos"),
            }
        )
    return out


def _download(target: Path) -> None:
    """Fetch the pinned upstream JSON and store it, converted, as JSON Lines at `target`."""
    with urllib.request.urlopen(UPSTREAM_URL, timeout=60) as resp:
        rows = json.loads(resp.read())
    write_jsonl(target, from_upstream(rows, UPSTREAM_URL))


def data_file(sysbench_file: str | None = None) -> Path:
    """--metadata sysbench_file, else $RPO_BENCH_DATA/sysbench/, else the pinned download."""
    if sysbench_file:
        path = Path(sysbench_file)
        if not path.exists():
            raise FileNotFoundError(f"SysBench file {path} (metadata sysbench_file) not found")
        return path
    try:
        return paths.sysbench_file(FILE_NAME)
    except FileNotFoundError:
        pass  # not in $RPO_BENCH_DATA: the pinned download
    # v2: the conversion keeps the ground-truth replies
    cached = paths.cache_dir() / "sysbench" / f"sysbench_eval_{UPSTREAM_COMMIT[:12]}_v2.jsonl"
    if not cached.exists():
        try:
            _download(cached)
        except OSError as err:  # offline, or GitHub unreachable: say what to do instead
            raise FileNotFoundError(
                f"SysBench data not found: no {FILE_NAME} in $RPO_BENCH_DATA/sysbench/ "
                f"(RPO_BENCH_DATA={os.environ.get('RPO_BENCH_DATA')}) and {UPSTREAM_URL} could "
                f"not be fetched ({type(err).__name__}: {err}). Put {FILE_NAME} (schema: "
                "../shared/data/sysbench/README.md) in $RPO_BENCH_DATA/sysbench/ or pass "
                '--metadata \'{"sysbench_file": "/path/to/sysbench_eval.jsonl"}\'. '
                "SysBench has no licence: never commit it."
            ) from err
    return cached


def session_doc(session: Session) -> dict[str, Any]:
    """A session as an lm-eval doc, in the data file's `turns` schema (Arrow-friendly)."""
    return {
        "system_id": session.system_id,
        "domain": session.domain,
        "scene": session.scene,
        "rounds_related": session.rounds_related,
        "system_prompt": session.system_prompt,
        "turns": [
            {
                "round_index": t.round_index,
                "user": t.user,
                "alignment": t.alignment,
                "reference": t.reference,
                "criteria": [
                    {"criteria_id": c.id, "criteria_content": c.content, "criteria_type": c.type}
                    for c in t.criteria
                ],
            }
            for t in session.turns
        ],
    }
