"""One sampled turn: the samples-file row that pair strategies read.

A samples row (one per turn):
`{"id", "system"?, "history", "task", "constraints", "constraint_slot", "responses"}`,
each response `{"text", "verdicts", "true_verdicts"?}` with one boolean per constraint.
A constraint is a verifiable `{"id", "kwargs", ...}` (`rpo_bench.constraints.from_dict`)
or a free-text `{"text"}` (SysBench style), reversible only through a caller's reverser.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpo_bench.constraints import AnyConstraint, TextConstraint, from_dict
from rpo_bench.data.prompt import SLOTS, Message, Slot
from rpo_bench.fields import Field, field_error
from rpo_bench.jsonl import iter_rows

Verdicts = tuple[bool, ...]


@dataclass(frozen=True)
class JudgedTurn:
    """A turn's prompt parts, its sampled responses and their judged verdicts."""

    id: str
    task: str
    constraints: tuple[AnyConstraint, ...]
    slot: Slot
    responses: tuple[str, ...]
    verdicts: tuple[Verdicts, ...]  # verdicts[response][constraint], as judged
    system: str | None = None
    history: tuple[Message, ...] = ()
    true_verdicts: tuple[Verdicts, ...] | None = None  # before judge noise, when known
    # responses the judge could not judge (their verdicts are placeholders, all False): the
    # pairs stage leaves such a turn out and counts it
    unjudged: tuple[int, ...] = ()
    # responses from a teacher (the critic pool): off-policy; every other is the policy's
    off_policy: tuple[int, ...] = ()


def _string(value: Any, at: Field, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise at.error(f"must be a non-empty string, got {value!r}")
    return value


def _list(value: Any, at: Field) -> list[Any]:
    if not isinstance(value, list):
        raise at.error(f"must be a list, got {type(value).__name__}")
    return value


def _verdicts(value: Any, n: int, at: Field) -> Verdicts:
    value = _list(value, at)
    if len(value) != n:
        raise at.error(f"has {len(value)} verdicts for {n} constraints")
    for k, v in enumerate(value):
        if not isinstance(v, bool):
            raise at(k).error(f"must be true or false, got {v!r}")
    return tuple(value)


def _constraint(value: Any, at: Field) -> AnyConstraint:
    if not isinstance(value, dict):
        raise at.error(f"must be an object, got {type(value).__name__}")
    if "id" in value:
        try:
            return from_dict(value)
        except ValueError as err:
            raise at("id").error(f"is invalid: {err}") from err
    if "text" in value:
        return TextConstraint(_string(value["text"], at("text")))
    raise at.error("needs an 'id' (verifiable) or a 'text' (free text)")


def _message(value: Any, at: Field) -> Message:
    if not isinstance(value, dict):
        raise at.error(f"must be a message object, got {type(value).__name__}")
    role = value.get("role")
    if role not in ("user", "assistant"):
        raise at("role").error(f"must be 'user' or 'assistant', got {role!r}")
    return {"role": role, "content": _string(value.get("content"), at("content"), empty=True)}


def _required(row: dict[str, Any], key: str, at: Field) -> Any:
    if key not in row:
        raise at(key).error("is missing")
    return row[key]


def parse_turn(row: dict[str, Any], where: str) -> JudgedTurn:
    """Validate one samples row; errors name `where` (file:line) and the field."""
    at = Field(where)
    turn_id = _required(row, "id", at)
    if isinstance(turn_id, bool) or not isinstance(turn_id, str | int):
        raise at("id").error(f"must be a string, got {turn_id!r}")
    system = row.get("system")
    if system is not None:
        system = _string(system, at("system"), empty=True)
    history = _list(_required(row, "history", at), at("history"))
    constraints = _list(_required(row, "constraints", at), at("constraints"))
    slot = _required(row, "constraint_slot", at)
    if slot not in SLOTS:
        raise at("constraint_slot").error(f"must be one of {SLOTS}, got {slot!r}")
    responses = _list(_required(row, "responses", at), at("responses"))
    if not responses:
        raise at("responses").error("is empty: a turn needs responses")
    cons = tuple(_constraint(c, at("constraints")(k)) for k, c in enumerate(constraints))
    unjudged = _list(row.get("unjudged", []), at("unjudged"))
    for k, index in enumerate(unjudged):
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(responses):
            raise at("unjudged")(k).error(f"must be a response index, got {index!r}")
    texts, verdicts, truths, teacher = [], [], [], []
    none = (False,) * len(cons)  # an unjudged response's placeholder
    for k, resp in enumerate(responses):
        r_at = at("responses")(k)
        if not isinstance(resp, dict):
            raise r_at.error(f"must be an object, got {type(resp).__name__}")
        source = resp.get("source", "policy")
        if source not in ("policy", "teacher"):
            raise r_at("source").error(f"must be 'policy' or 'teacher', got {source!r}")
        if source == "teacher":
            teacher.append(k)
        texts.append(_string(_required(resp, "text", r_at), r_at("text"), empty=True))
        if k in unjudged:
            for key in ("verdicts", "true_verdicts"):
                if resp.get(key) is not None:
                    raise r_at(key).error("must be null: an unjudged response has no verdicts")
            verdicts.append(none)
            truths += [none] if "true_verdicts" in resp else []
            continue
        verdicts.append(_verdicts(_required(resp, "verdicts", r_at), len(cons), r_at("verdicts")))
        if "true_verdicts" in resp:
            truths.append(_verdicts(resp["true_verdicts"], len(cons), r_at("true_verdicts")))
    if truths and len(truths) != len(responses):
        raise at("responses").error("must give true_verdicts for every response or none")
    return JudgedTurn(
        id=str(turn_id),
        task=_string(_required(row, "task", at), at("task")),
        constraints=cons,
        slot=slot,
        responses=tuple(texts),
        verdicts=tuple(verdicts),
        system=system,
        history=tuple(_message(m, at("history")(k)) for k, m in enumerate(history)),
        true_verdicts=tuple(truths) if truths else None,
        unjudged=tuple(sorted(set(unjudged))),
        off_policy=tuple(teacher),
    )


def iter_turns(path: str | Path) -> Iterator[JudgedTurn]:
    """The turns of a samples file; a bad row or a repeated id names file, line and field."""
    seen: dict[str, int] = {}
    for line, row in iter_rows(path):
        turn = parse_turn(row, f"{path}:{line}")
        if turn.id in seen:
            where, problem = f"{path}:{line}", f"is {turn.id!r}, which repeats line {seen[turn.id]}"
            raise field_error(where, "id", problem)
        seen[turn.id] = line
        yield turn


def read_samples(path: str | Path) -> list[JudgedTurn]:
    """All turns of a samples JSONL file, validated."""
    return list(iter_turns(path))


def turn_from_row(row: dict[str, Any]) -> JudgedTurn:
    """A samples row built in memory (tests, benchmarks): validated like a file row."""
    return parse_turn(row, f"row {row.get('id', '?')!r}")
