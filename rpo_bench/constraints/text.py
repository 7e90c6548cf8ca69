"""A free-text constraint (SysBench style, the paper's data): shown, judged and reversed as
its own text, by an LLM judge and an LLM reverser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from rpo_bench.constraints.constraint import Constraint, from_dict


class Describable(Protocol):
    """Whatever is shown as a constraint, to a model or a judge: it describes itself."""

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Criterion:
    """A free-text constraint as SysBench numbers and types it (also the shape of the
    authors' generated system prompts' constraints)."""

    id: int
    content: str
    type: str


@dataclass(frozen=True)
class TextConstraint:
    """A free-text constraint; it is shown, and reversed, as its own text."""

    text: str

    def describe(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text}


AnyConstraint = Constraint | TextConstraint


def any_from_dict(row: dict[str, Any]) -> AnyConstraint:
    """Inverse of either kind's `to_dict`: `{"text"}` is free text, else `from_dict`."""
    if isinstance(row, dict) and "text" in row and "id" not in row:
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise ValueError(f"a free-text constraint needs a non-empty 'text', got {row!r}")
        return TextConstraint(row["text"])
    return from_dict(row)
