"""Training conversations: the schema shared by the data, sampling and ablation stages.

A conversation is a list of user turns, each a request plus the turn's cumulative
constraints (verifiable or free text), and belongs to one of `SPLITS`. `data.verifiable`
builds them from the vendored seed tasks, `data.freetext` from system prompts; they are
stored as JSONL, one conversation a line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpo_bench.constraints import AnyConstraint, any_from_dict
from rpo_bench.data.prompt import SLOTS, Slot
from rpo_bench.fields import Field
from rpo_bench.jsonl import iter_rows, write_jsonl

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class PlannedTurn:
    """One user turn: the request without constraints, and the turn's cumulative constraints."""

    task: str
    constraints: tuple[AnyConstraint, ...]  # verifiable, or free text (`data.freetext`)


@dataclass(frozen=True)
class TrainingConversation:
    id: str
    seed_id: str
    split: str
    turns: tuple[PlannedTurn, ...]
    constraint_slot: Slot = "user"
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seed_id": self.seed_id,
            "split": self.split,
            "constraint_slot": self.constraint_slot,
            "system": self.system,
            "turns": [
                {"task": t.task, "constraints": [c.to_dict() for c in t.constraints]}
                for t in self.turns
            ],
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any], where: str = "conversation") -> TrainingConversation:
        """Inverse of `to_dict`; bad input raises ValueError naming `where` and the field."""

        at = Field(where)
        turns = []
        for t, raw in enumerate(at.of(row, "turns", list)):
            t_at = at("turns")(t)
            if not isinstance(raw, dict) or not isinstance(raw.get("task"), str):
                raise t_at.error("needs a string 'task'")
            if not isinstance(raw.get("constraints"), list):
                raise t_at("constraints").error("must be a list")
            try:
                constraints = tuple(any_from_dict(c) for c in raw["constraints"])
            except ValueError as err:
                raise t_at("constraints").error(f"is invalid: {err}") from None
            turns.append(PlannedTurn(raw["task"], constraints))
        if not turns:
            raise at("turns").error("is empty: a conversation needs at least one turn")
        slot = at.of(row, "constraint_slot", str)
        if slot not in SLOTS:
            raise at("constraint_slot").error(f"must be one of {SLOTS}, got {slot!r}")
        system = row.get("system")
        if system is not None and not isinstance(system, str):
            raise at("system").error("must be a string or null")
        meta = row.get("meta") or {}
        if not isinstance(meta, dict):
            raise at("meta").error("must be an object or null")
        return cls(
            id=at.of(row, "id", str),
            seed_id=at.of(row, "seed_id", str),
            split=at.of(row, "split", str),
            turns=tuple(turns),
            constraint_slot=slot,
            system=system,
            meta=dict(meta),
        )


def write_conversations(path: str | Path, conversations: Iterable[TrainingConversation]) -> None:
    write_jsonl(path, (c.to_dict() for c in conversations))


def read_conversations(path: str | Path) -> list[TrainingConversation]:
    return [TrainingConversation.from_dict(row, f"{path}:{line}") for line, row in iter_rows(path)]
