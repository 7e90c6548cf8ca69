"""Play conversations turn by turn with the model's OWN earlier replies: the one loop.

At turn k every live conversation is generated in one batch; one reply per
conversation joins its history (a kept sample, or a reply the keep hook gives, such as a
teacher's), then turn k+1 is built; a keep hook may also end a conversation. Hooks say
how a turn's messages are built from the history, how a batch is generated, and what is
kept. Training-pair sampling (`data.sample`), held-out evaluation
and the lm-eval multi-turn tasks (`evaluate.multiturn_task`) all play through it.
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


@dataclass(frozen=True)
class PlayedTurn:
    chat: list[Message]  # the messages the model answered
    samples: list[str]  # its replies
    kept: int | None  # the sample that joined the history (None: another reply did)
    reply: str | None = None  # what joined the history (None: the conversation ended)


# (conversation index, turn, history messages so far) -> this turn's messages
ChatHook = Callable[[int, int, list[Message]], list[Message]]
# (turn, live conversation indices, their chats) -> each chat's samples
GenerateHook = Callable[[int, list[int], list[list[Message]]], list[list[str]]]
# (turn, live indices, chats, samples) -> per chat: the index of the sample kept in the
# history, a reply to keep instead (str), or None to end the conversation after this turn
Kept = int | str | None
KeepHook = Callable[[int, list[int], list[list[Message]], list[list[str]]], list[Kept]]


def play_turns(
    n_turns: Sequence[int], chat: ChatHook, generate: GenerateHook, keep: KeepHook | None = None
) -> list[list[PlayedTurn]]:
    """played[conversation][turn] for `n_turns[i]` turns of conversation i. The history
    after a turn is the one before it, the turn's user message and the kept sample."""
    played: list[list[PlayedTurn]] = [[] for _ in n_turns]
    history: list[list[Message]] = [[] for _ in n_turns]
    ended: set[int] = set()
    for turn in range(max(n_turns, default=0)):
        live = [i for i, n in enumerate(n_turns) if turn < n and i not in ended]
        if not live:
            break
        chats = [chat(i, turn, history[i]) for i in live]
        samples = generate(turn, live, chats)
        kept: list[Kept] = keep(turn, live, chats, samples) if keep else [0] * len(live)
        for i, c, s, k in zip(live, chats, samples, kept, strict=True):
            reply = s[k] if isinstance(k, int) else k
            played[i].append(PlayedTurn(c, s, k if isinstance(k, int) else None, reply))
            if reply is None:
                ended.add(i)
            else:
                history[i] = [*history[i], c[-1], {"role": "assistant", "content": reply}]
    return played


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

    def chat(self, turn: int, history: Sequence[Message]) -> list[Message]:
        """Messages for `turn` (0-based): system, the history, this user turn."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, *history, {"role": "user", "content": self.turns[turn]}]


def history_of(conv: Conversation, replies: Sequence[str], turn: int) -> list[Message]:
    """The user/assistant messages of the turns before `turn` (0-based), with `replies`."""
    history = []
    for k in range(turn):
        history += [
            {"role": "user", "content": conv.turns[k]},
            {"role": "assistant", "content": replies[k]},
        ]
    return history


def play(
    backend: Backend, conversations: Sequence[Conversation], settings: GenerationSettings
) -> list[list[list[str]]]:
    """samples[conversation][turn] = the turn's `settings.n` replies; the first is kept."""
    played = play_turns(
        [c.n_turns() for c in conversations],
        lambda i, turn, history: conversations[i].chat(turn, history),
        lambda turn, live, chats: backend.generate(chats, settings),
    )
    return [[t.samples for t in turns] for turns in played]
