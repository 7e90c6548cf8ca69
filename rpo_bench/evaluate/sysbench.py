"""SysBench (system-message following) metrics from per-turn judge verdicts.

Reads the benchmark sessions (`sysbench_eval.jsonl`) and one model's judge labels
(`judge_labels/<model>.jsonl`, schema in the data README) and computes the paper's metrics:
CSR (constraint satisfaction rate), ISR (instruction = turn satisfaction rate) and SSR
(session stability rate), with splits, R1..R5, CSR per constraint type and bootstrap CIs.
The `sysbench-score` subcommand prints them as JSON.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rpo_bench.jsonl import iter_rows
from rpo_bench.paths import sysbench_file

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
class Criterion:
    id: int
    content: str
    type: str


@dataclass(frozen=True)
class Turn:
    round_index: int
    user: str
    alignment: str
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True)
class Session:
    system_id: int
    domain: str
    scene: str | None
    rounds_related: bool
    system_prompt: str
    turns: tuple[Turn, ...]


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


def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _field(
    row: dict[str, Any], key: str, types: tuple[type, ...], where: str, name: str = ""
) -> Any:
    """row[key], checked against `types`; `name` is the field's full path for the message."""
    name = name or key
    if key not in row:
        raise ValueError(f"{where}: field {name!r} missing")
    value = row[key]
    # bool is an int subclass: an id or index given as true/false is an error, not 1/0.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ValueError(
            f"{where}: field {name!r} must be {_type_name(types)}, got {type(value).__name__}"
        )
    return value


def _turns_from_official(row: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Build `turns` from the upstream schema (messages + prompt_infos keyed by user text)."""
    messages = _field(row, "messages", (list,), where)
    infos = _field(row, "prompt_infos", (dict,), where)
    turns = []
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            info = infos.get(m.get("content"))
            if not isinstance(info, dict):
                raise ValueError(f"{where}: field 'prompt_infos' has no entry for a user message")
            criteria = _field(info, "criteria", (dict,), where, "prompt_infos.criteria")
            turns.append(
                {
                    "round_index": len(turns) + 1,
                    "user": m["content"],
                    "alignment": info.get("alignment"),
                    "criteria": list(criteria.values()),
                }
            )
    return turns


def _turn(raw: Any, index: int, where: str) -> Turn:
    name = f"turns[{index}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: field {name!r} must be an object")
    round_index = _field(raw, "round_index", (int,), where, f"{name}.round_index")
    if round_index != index + 1:
        raise ValueError(
            f"{where}: field '{name}.round_index' is {round_index}, expected {index + 1}"
        )
    user = _field(raw, "user", (str,), where, f"{name}.user")
    alignment = _field(raw, "alignment", (str,), where, f"{name}.alignment")
    if alignment not in ALIGNMENTS:
        raise ValueError(
            f"{where}: field '{name}.alignment' is {alignment!r}, not one of {ALIGNMENTS}"
        )
    raw_criteria = _field(raw, "criteria", (list,), where, f"{name}.criteria")
    if not raw_criteria:
        raise ValueError(f"{where}: field '{name}.criteria' is empty")
    criteria = []
    for j, c in enumerate(raw_criteria):
        cname = f"{name}.criteria[{j}]"
        if not isinstance(c, dict):
            raise ValueError(f"{where}: field {cname!r} must be an object")
        criteria.append(
            Criterion(
                id=_field(c, "criteria_id", (int,), where, f"{cname}.criteria_id"),
                content=_field(c, "criteria_content", (str,), where, f"{cname}.criteria_content"),
                type=_field(c, "criteria_type", (str,), where, f"{cname}.criteria_type"),
            )
        )
    ids = [c.id for c in criteria]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: field '{name}.criteria' repeats a criteria_id: {ids}")
    return Turn(round_index, user, alignment, tuple(criteria))


def session_from_row(row: dict[str, Any], where: str) -> Session:
    """One session of `sysbench_eval.jsonl`: 5 rounds, each with >= 1 criterion.

    Uses the row's `turns` field, or rebuilds it from `messages` + `prompt_infos` (the
    upstream schema) when absent. `where` ("file:line") prefixes every error.
    """
    raw_turns = row["turns"] if "turns" in row else _turns_from_official(row, where)
    if not isinstance(raw_turns, list) or len(raw_turns) != N_ROUNDS:
        raise ValueError(f"{where}: field 'turns' must be a list of {N_ROUNDS} rounds")
    return Session(
        system_id=_field(row, "system_id", (int,), where),
        domain=_field(row, "domain", (str,), where),
        scene=_field(row, "scene", (str, type(None)), where),
        rounds_related=_field(row, "rounds_related", (bool,), where),
        system_prompt=_field(row, "system_prompt", (str,), where),
        turns=tuple(_turn(t, i, where) for i, t in enumerate(raw_turns)),
    )


def load_sessions(path: str | Path) -> list[Session]:
    """Sessions of `sysbench_eval.jsonl` (see `session_from_row`); system ids must not repeat."""
    sessions: list[Session] = []
    first_line: dict[int, str] = {}
    for _, where, row in _rows(path):
        system_id = _field(row, "system_id", (int,), where)
        if system_id in first_line:
            raise ValueError(
                f"{where}: field 'system_id': session {system_id} repeats ({first_line[system_id]})"
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
    judge_error = _field(row, "judge_error", (bool,), where) if "judge_error" in row else False
    verdicts = _field(row, "verdicts", (dict,), where)
    for key, value in verdicts.items():
        if value is not None and not isinstance(value, bool):
            raise ValueError(
                f"{where}: field 'verdicts' value for {key!r} must be true, false or null, "
                f"got {value!r}"
            )
    all_pass = _field(row, "all_pass", (bool, type(None)) if judge_error else (bool,), where)
    # all_pass is defined as "no criterion judged false" (null does not fail a turn).
    failed = [k for k, v in verdicts.items() if v is False]
    if not judge_error and all_pass == bool(failed):
        detail = f"criteria {failed} judged false" if failed else "no criterion judged false"
        raise ValueError(f"{where}: field 'all_pass' is {str(all_pass).lower()} but {detail}")
    return Label(
        model=_field(row, "model", (str,), where),
        system_id=_field(row, "system_id", (int,), where),
        round_index=_field(row, "round_index", (int,), where),
        answer=_field(row, "answer", (str,), where),
        judge=_field(row, "judge", (str,), where),
        reasoning=_field(row, "reasoning", (str,), where),
        verdicts=verdicts,
        verdicts_raw=_field(row, "verdicts_raw", (dict,), where),
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
        where = f"{lab.source or 'labels'}:{lab.line}"
        if lab.model != model:
            raise ValueError(
                f"{where}: field 'model': labels mix models {model!r} and {lab.model!r}"
            )
        session = by_id.get(lab.system_id)
        if session is None:
            raise ValueError(f"{where}: field 'system_id': unknown session {lab.system_id}")
        if not 1 <= lab.round_index <= len(session.turns):
            raise ValueError(
                f"{where}: field 'round_index': session {lab.system_id} "
                f"has no round {lab.round_index}"
            )
        key = (lab.system_id, lab.round_index)
        if key in keyed:
            raise ValueError(
                f"{where}: field 'round_index': second label for session {lab.system_id} "
                f"round {lab.round_index} (first at line {keyed[key].line})"
            )
        keyed[key] = lab
        if lab.judge_error:
            continue  # a failed judge call may have returned no verdicts at all
        expected = {str(c.id) for c in session.turns[lab.round_index - 1].criteria}
        got = set(lab.verdicts)
        if got != expected:
            missing, extra = sorted(expected - got, key=int), sorted(got - expected)
            raise ValueError(
                f"{where}: field 'verdicts': ids differ from the checklist of session "
                f"{lab.system_id} round {lab.round_index} (missing {missing}, unknown {extra})"
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


# ---------------------------------------------------------------- metrics


def _percent(num: float, den: float, ndigits: int | None) -> float | None:
    if den == 0:
        return None
    value = 100.0 * num / den
    return round(value, ndigits) if ndigits is not None else value


def _bootstrap_ci(
    per_session: dict[str, tuple[np.ndarray, np.ndarray]],
    n_boot: int,
    seed: int,
    ndigits: int | None,
) -> dict[str, list[float] | None]:
    """95% percentile intervals of num.sum()/den.sum(), resampling whole sessions.

    Sessions, not turns or constraints, are resampled because turns within a session share a
    system message and history and are not independent.
    """
    n = len(next(iter(per_session.values()))[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    out: dict[str, list[float] | None] = {}
    for name, (num, den) in per_session.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            stats = 100.0 * num[idx].sum(axis=1) / den[idx].sum(axis=1)
        if np.isnan(stats).all():
            out[name] = None
            continue
        lo, hi = (float(x) for x in np.nanpercentile(stats, [2.5, 97.5]))
        out[name] = [round(lo, ndigits), round(hi, ndigits)] if ndigits is not None else [lo, hi]
    return out


def score(
    labels: Sequence[Label],
    sessions: Sequence[Session],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ndigits: int | None = 2,
) -> dict[str, Any]:
    """SysBench metrics in percent (JSON-ready), as the paper and reference code define them.

    - csr: constraints judged true / all constraints, micro over every constraint. A null
      verdict (judge said e.g. "not applicable") is NOT satisfied.
    - isr: share of turns with all_pass = no constraint judged false (null does NOT fail a
      turn); isr_align / isr_misalign split by the turn's alignment.
    - ssr: per session, consecutive passing turns from round 1 up to the first failure,
      divided by 5, averaged over sessions; ssr_dependent / ssr_parallel split by
      rounds_related. r1..r5: share of sessions whose first k turns all pass.
    - csr_by_type: CSR per constraint type, keyed by the Chinese type name
      (`type_aliases` gives the English names).
    - ci95: 95% bootstrap intervals (sessions resampled, `n_boot` times, seeded) of csr/isr/ssr.

    Turns whose label has `judge_error: true` are counted in `judge_errors` and left out of
    the CSR and ISR numerators and denominators (an unjudged turn is neither kept nor failed),
    so `n_turns` / `n_constraints` are the judged ones. For SSR and R1..R5 such a turn ends the
    session's streak: a streak must be confirmed turn by turn. `ndigits=None` keeps full
    precision.
    """
    keyed = check_coverage(labels, sessions)
    n = len(sessions)
    csr_num, csr_den = np.zeros(n), np.zeros(n)
    isr_num, isr_den = np.zeros(n), np.zeros(n)
    streaks = np.zeros(n)
    by_alignment = {a: [0, 0] for a in ALIGNMENTS}  # [passed, judged]
    by_type: dict[str, list[int]] = {}  # type -> [satisfied, total]
    judge_errors = 0
    for i, session in enumerate(sessions):
        streak_alive = True
        for turn in session.turns:
            label = keyed[(session.system_id, turn.round_index)]
            if label.judge_error:
                judge_errors += 1
                streak_alive = False
                continue
            passed = all(label.verdicts[str(c.id)] is not False for c in turn.criteria)
            for c in turn.criteria:
                counts = by_type.setdefault(c.type, [0, 0])
                counts[0] += label.verdicts[str(c.id)] is True
                counts[1] += 1
            csr_num[i] += sum(label.verdicts[str(c.id)] is True for c in turn.criteria)
            csr_den[i] += len(turn.criteria)
            isr_num[i] += passed
            isr_den[i] += 1
            by_alignment[turn.alignment][0] += passed
            by_alignment[turn.alignment][1] += 1
            streak_alive = streak_alive and passed
            streaks[i] += streak_alive
    ssr = streaks / N_ROUNDS
    related = np.array([s.rounds_related for s in sessions])
    ordered_types = [t for t in TYPE_ALIASES if t in by_type] + sorted(
        set(by_type) - set(TYPE_ALIASES)
    )
    ones = np.ones(n)
    result: dict[str, Any] = {
        "model": labels[0].model,
        "csr": _percent(csr_num.sum(), csr_den.sum(), ndigits),
        "isr": _percent(isr_num.sum(), isr_den.sum(), ndigits),
        "ssr": _percent(ssr.sum(), n, ndigits),
        "isr_align": _percent(*by_alignment["align"], ndigits),
        "isr_misalign": _percent(*by_alignment["misalign"], ndigits),
        "ssr_dependent": _percent(ssr[related].sum(), related.sum(), ndigits),
        "ssr_parallel": _percent(ssr[~related].sum(), (~related).sum(), ndigits),
        **{f"r{k}": _percent((streaks >= k).sum(), n, ndigits) for k in range(1, N_ROUNDS + 1)},
        "csr_by_type": {t: _percent(*by_type[t], ndigits) for t in ordered_types},
        "type_aliases": {t: TYPE_ALIASES.get(t, t) for t in ordered_types},
        "ci95": _bootstrap_ci(
            {"csr": (csr_num, csr_den), "isr": (isr_num, isr_den), "ssr": (ssr, ones)},
            n_boot,
            seed,
            ndigits,
        ),
        "n_sessions": n,
        "n_turns": int(isr_den.sum()),
        "n_constraints": int(csr_den.sum()),
        "judge_errors": judge_errors,
    }
    return result


# ---------------------------------------------------------------- command line


def _run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.data) if args.data else sysbench_file("sysbench_eval.jsonl")
    result = score(
        load_labels(args.labels), load_sessions(data), n_boot=args.bootstrap, seed=args.seed
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return result


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `sysbench-score` on an argparse subparsers object (func=handler)."""
    p = subparsers.add_parser(
        "sysbench-score",
        help="SysBench CSR/ISR/SSR from judge labels",
        description="Score one model's SysBench judge labels; prints the metrics as JSON.",
    )
    p.add_argument("--labels", required=True, help="judge labels JSONL (judge_labels schema)")
    p.add_argument(
        "--data",
        default=None,
        help="sysbench_eval.jsonl (default: $RPO_BENCH_DATA/sysbench/sysbench_eval.jsonl)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for ci95")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_run)
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """`sysbench-score` on its own: parse argv, print the JSON and return it; errors raise."""
    parser = argparse.ArgumentParser(prog="rpo-bench")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sysbench-score", *(argv if argv is not None else [])])
    return args.func(args)


if __name__ == "__main__":
    import sys

    try:
        main(sys.argv[1:])
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"sysbench-score: error: {err}", file=sys.stderr)
        sys.exit(2)
