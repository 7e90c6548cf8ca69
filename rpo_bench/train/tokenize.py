"""Tokenize examples with the chat template, as TRL splits prompt and reply, and fit them to
`max_length`.

Only the final assistant reply is scored: the prompt (system, earlier turns, the last
user message) is context. A prompt too long for `max_length` loses whole earlier messages,
oldest first; a pair still too long is dropped and counted. Nothing else is ever cut: the
system message and the last user message hold the turn's constraints (a pair's reversed
ones among them), and a prompt cut inside them would say something other than what its
chosen reply was judged against. An input-side pair's two prompts are each fitted on their
own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rpo_bench.train.examples import Message, Pair


@dataclass
class Encoded:
    """One tokenized example: a prompt and the two replies scored under it, chosen then
    rejected (each ends with the end-of-turn).

    SFT and KTO rows are encoded as pairs too, so batching and scoring serve them unchanged
    (`unpaired`): their response is the chosen reply (`response_ids`); the rejected one is
    empty for SFT and, for KTO, another example's response, its KL reference point.
    """

    index: int  # position in the pairs file, the key of the reference log-prob cache
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    margin: int
    truncated: bool = False
    desirable: bool | None = None  # KTO's label
    rejected_prompt_ids: list[int] | None = None  # input-side pairs: the rejected's prompt

    @property
    def response_ids(self) -> list[int]:
        """SFT/KTO rows: the example's own response (held as the chosen reply)."""
        return self.chosen_ids

    @property
    def rejected_context(self) -> list[int]:
        """The prompt the rejected reply is scored under."""
        return self.prompt_ids if self.rejected_prompt_ids is None else self.rejected_prompt_ids

    @property
    def length(self) -> int:
        return max(
            len(self.prompt_ids) + len(self.chosen_ids),
            len(self.rejected_context) + len(self.rejected_ids),
        )


@dataclass
class Tokenized:
    pairs: list[Encoded]
    truncated: int  # prompts that lost earlier turns to fit max_length
    dropped: int  # pairs that do not fit max_length even without earlier turns


def _chat_ids(tokenizer: Any, messages: list[Message], **kwargs: Any) -> list[int]:
    return list(
        tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)[
            "input_ids"
        ]
    )


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode(tokenizer: Any, prompt: list[Message], *replies: str) -> tuple[list[int], ...]:
    """(prompt_ids, *reply_ids) as TRL splits them, e.g. (prompt, chosen, rejected).

    The reply starts where the prompt with generation header and the full chat diverge,
    so templates that render the prompt differently alone still split correctly.
    """
    prompt_ids = _chat_ids(tokenizer, prompt, add_generation_prompt=True)
    full = [_chat_ids(tokenizer, [*prompt, {"role": "assistant", "content": r}]) for r in replies]
    n = min(_common_prefix(prompt_ids, ids) for ids in full)
    return prompt_ids[:n], *(ids[n:] for ids in full)


def _drop_oldest_turn(prompt: list[Message]) -> list[Message] | None:
    """The prompt without its oldest history message (and the reply to it); None if none left."""
    start = 1 if prompt[0]["role"] == "system" else 0
    history = prompt[start:-1]
    if not history:
        return None
    cut = 2 if len(history) > 1 and history[1]["role"] == "assistant" else 1
    return [*prompt[:start], *history[cut:], prompt[-1]]


def fit(
    tokenizer: Any, prompt: list[Message], replies: tuple[str, ...], max_length: int
) -> tuple[list[int], list[list[int]], bool] | None:
    """(prompt_ids, reply_ids, shortened): the prompt fitted next to the longest reply by
    leaving out whole earlier turns, oldest first; None if it does not fit without them."""
    p, *ids = encode(tokenizer, prompt, *replies)
    budget = max_length - max(len(r) for r in ids)  # room left for the prompt
    shortened = len(p) > budget
    while len(p) > budget and (prompt := _drop_oldest_turn(prompt)) is not None:
        p, *ids = encode(tokenizer, prompt, *replies)
    return (p, ids, shortened) if len(p) <= budget else None


def tokenize_pairs(pairs: list[Pair], tokenizer: Any, max_length: int) -> Tokenized:
    out, truncated, dropped = [], 0, 0
    for index, pair in enumerate(pairs):
        if pair.rejected_prompt is None:
            fitted = fit(tokenizer, pair.prompt, (pair.chosen, pair.rejected), max_length)
            if fitted is None:
                dropped += 1
                continue
            p, (c, r), shortened = fitted
            out.append(Encoded(index, p, c, r, pair.margin, shortened))
        else:  # two prompts: each side fitted on its own
            chosen = fit(tokenizer, pair.prompt, (pair.chosen,), max_length)
            rejected = fit(tokenizer, pair.rejected_prompt, (pair.rejected,), max_length)
            if chosen is None or rejected is None:
                dropped += 1
                continue
            (p, (c,), cut_c), (q, (r,), cut_r) = chosen, rejected
            shortened = cut_c or cut_r
            out.append(Encoded(index, p, c, r, pair.margin, shortened, rejected_prompt_ids=q))
        truncated += shortened
    if not out:
        raise ValueError(f"no pair fits max_length={max_length}, even without its earlier turns")
    return Tokenized(out, truncated, dropped)
