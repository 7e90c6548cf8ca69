"""How a turn's task and constraints become chat messages.

One function renders every prompt the pipeline shows a model: sampling prompts,
the rewritten prompts of preference pairs and the held-out evaluation set. A
reversed constraint is rendered from its own description, so a pair's prompt says
exactly what its chosen response satisfies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rpo_bench.constraints.text import Describable

Message = dict[str, str]
Slot = Literal["user", "system"]
SLOTS: tuple[str, ...] = ("user", "system")


def constraint_block(constraints: Sequence[Describable]) -> str:
    """The constraints as a bulleted list, one per line."""
    return "\n".join(f"- {c.describe()}" for c in constraints)


def render(
    task: str,
    constraints: Sequence[Describable],
    slot: Slot = "user",
    system: str | None = None,
    history: Sequence[Message] = (),
) -> list[Message]:
    """Messages for one turn: [system], earlier turns, the user request with its constraints.

    slot="user" appends the constraints to the request (Multi-IF, IFEval); slot="system"
    lists them in the system message, as SysBench does. `history` holds the earlier
    user/assistant messages, without a system message.
    """
    if slot not in SLOTS:
        raise ValueError(f"constraint_slot must be one of {SLOTS}, got {slot!r}")
    block = constraint_block(constraints)
    if slot == "system" and block:
        head = f"{system}\n\n" if system else ""
        system = f"{head}Follow these rules in every reply:\n{block}"
    elif block:
        task = f"{task}\n\nYour answer must follow these instructions:\n{block}"
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, *history, {"role": "user", "content": task}]
