"""Play conversations turn by turn with the model's OWN earlier replies.

At turn k every live conversation is generated in one batch; the replies are
appended, then turn k+1 is built. A conversation ends at its first missing turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rpo_bench.rollout.settings import GenerationSettings

Message = dict[str, str]


class Backend(Protocol):
    def generate(
        self, chats: Sequence[Sequence[Message]], settings: GenerationSettings
    ) -> list[list[str]]: ...


@dataclass
class Conversation:
    id: str
    turns: list[str | None]  # user messages; None or "" = no such turn
    system: str | None = None
    meta: dict = field(default_factory=dict)

    def n_turns(self) -> int:
        for k, turn in enumerate(self.turns):
            if not turn:
                return k
        return len(self.turns)


def chat_at(conv: Conversation, replies: Sequence[str], turn: int) -> list[Message]:
    """Messages for `turn` (0-based): system, earlier turns with their replies, this user turn."""
    messages = [{"role": "system", "content": conv.system}] if conv.system else []
    for k in range(turn):
        messages += [
            {"role": "user", "content": conv.turns[k]},
            {"role": "assistant", "content": replies[k]},
        ]
    return messages + [{"role": "user", "content": conv.turns[turn]}]


# Picks the reply kept in the history from a turn's samples (default: the first).
HistoryChoice = Callable[[Conversation, int, list[str]], str]


def play(
    backend: Backend,
    conversations: Sequence[Conversation],
    settings: GenerationSettings,
    keep: HistoryChoice | None = None,
) -> list[list[list[str]]]:
    """samples[conversation][turn] = the turn's `settings.n` replies."""
    samples: list[list[list[str]]] = [[] for _ in conversations]
    history: list[list[str]] = [[] for _ in conversations]
    for turn in range(max((c.n_turns() for c in conversations), default=0)):
        live = [i for i, c in enumerate(conversations) if turn < c.n_turns()]
        chats = [chat_at(conversations[i], history[i], turn) for i in live]
        for i, replies in zip(live, backend.generate(chats, settings), strict=True):
            samples[i].append(replies)
            history[i].append(keep(conversations[i], turn, replies) if keep else replies[0])
    return samples
