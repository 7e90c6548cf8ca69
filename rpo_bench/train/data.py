"""Training examples: read and validate preference pairs, tokenize with the chat template,
batch (SFT and KTO rows: `unpaired`).

Only the final assistant reply is scored: the prompt (system, earlier turns, the last
user message) is context. An input-side pair (IOPO) carries a `rejected_prompt`: the same
reply, preferred under `prompt` over `rejected_prompt`; each side is fitted on its own.
A prompt too long for `max_length` loses whole earlier messages first, then tokens from
the left; the reply is never cut.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rpo_bench.fields import field_error
from rpo_bench.jsonl import iter_rows

Message = dict[str, str]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Pair:
    id: str
    prompt: list[Message]
    chosen: str
    rejected: str
    margin: int
    rejected_prompt: list[Message] | None = None  # input-side pairs: the rejected's own prompt


def check_row(
    row: dict[str, Any], where: str, replies: tuple[str, ...], other: tuple[str, ...] = ()
) -> list[Message]:
    """Validate the fields every example has (id, prompt), its reply strings and that the
    `other` fields are present; returns the prompt. Errors name `where` and the field."""

    for name in ("id", "prompt", *replies, *other):
        if name not in row:
            raise field_error(where, name, "is missing")
    if not isinstance(row["id"], str | int) or isinstance(row["id"], bool):
        raise field_error(where, "id", "must be a string or an integer")
    prompt = check_prompt(row["prompt"], where, "prompt")
    for name in replies:
        if not isinstance(row[name], str) or not row[name].strip():
            raise field_error(where, name, "must be a non-empty string")
    return prompt


def check_prompt(prompt: Any, where: str, field: str) -> list[Message]:
    """A chat prompt ending with the user message the reply answers; a copy."""
    if not isinstance(prompt, list) or not prompt:
        raise field_error(where, field, "must be a non-empty list of chat messages")
    for i, m in enumerate(prompt):
        if not (
            isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)
        ):
            shape = f"must be {{'role': one of {ROLES}, 'content': str}}"
            raise field_error(where, f"{field}[{i}]", shape)
    if prompt[-1]["role"] != "user":
        raise field_error(where, field, "must end with a user message (the reply answers it)")
    return [dict(m) for m in prompt]


def _check(row: dict[str, Any], where: str) -> Pair:
    prompt = check_row(row, where, ("chosen", "rejected"), ("margin",))
    margin = row["margin"]
    if not isinstance(margin, int) or isinstance(margin, bool) or margin < 0:
        raise field_error(where, "margin", f"must be an integer >= 0, got {margin!r}")
    rejected_prompt = None
    if "rejected_prompt" in row:  # an input-side pair; `chosen_prompt`, if given, is `prompt`
        rejected_prompt = check_prompt(row["rejected_prompt"], where, "rejected_prompt")
        if "chosen_prompt" in row and row["chosen_prompt"] != row["prompt"]:
            raise field_error(
                where, "chosen_prompt", "must equal 'prompt' (the chosen reply's prompt)"
            )
    elif "chosen_prompt" in row:
        raise field_error(where, "rejected_prompt", "is missing (the row has a 'chosen_prompt')")
    return Pair(str(row["id"]), prompt, row["chosen"], row["rejected"], margin, rejected_prompt)


def read_pairs(path: str | Path) -> list[Pair]:
    """Validated pairs; errors name file:line and the field. An empty file is an error."""
    pairs = [_check(row, f"{path}:{line}") for line, row in iter_rows(path)]
    if not pairs:
        raise ValueError(f"{path}: no preference pairs (the file is empty)")
    return pairs


@dataclass
class Encoded:
    """One tokenized pair: the shared prompt and each reply (reply ends with the end-of-turn)."""

    index: int  # position in the pairs file, the key of the reference log-prob cache
    prompt_ids: list[int]
    chosen_ids: list[int]  # SFT/KTO: the response
    rejected_ids: list[int]  # SFT: empty; KTO: a mismatched response (`unpaired`)
    margin: int
    truncated: bool = False
    desirable: bool | None = None  # KTO's label
    rejected_prompt_ids: list[int] | None = None  # input-side pairs: the rejected's prompt

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
    truncated: int  # prompts shortened to fit max_length
    dropped: int  # pairs whose reply alone does not fit max_length


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
    """(prompt_ids, reply_ids, shortened): the prompt cut to fit next to the longest reply
    (whole earlier messages first, then tokens from the left); None if a reply alone does
    not fit."""
    p, *ids = encode(tokenizer, prompt, *replies)
    budget = max_length - max(len(r) for r in ids)  # room left for the prompt
    if budget < 1:
        return None
    shortened = len(p) > budget
    while len(p) > budget and (prompt := _drop_oldest_turn(prompt)) is not None:
        p, *ids = encode(tokenizer, prompt, *replies)
    return p[-budget:], ids, shortened


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
        raise ValueError(f"no pair fits max_length={max_length}: every reply alone is longer")
    return Tokenized(out, truncated, dropped)


@dataclass
class Batch:
    """One forward's worth of pairs; log-probs come out chosen first, then rejected.

    Plain: 2B right-padded rows, `prompt|chosen` then `prompt|rejected` (an input-side
    pair: `rejected_prompt|rejected`).
    Shared prompt: B rows `prompt|chosen|rejected`; a 4D mask keeps the rejected reply
    from seeing the chosen one, and its positions restart after the prompt, so each
    reply is scored exactly as in its own row while the prompt is computed once.
    """

    index: torch.Tensor  # [B] pair indices
    input_ids: torch.Tensor  # plain [2B, T]; shared [B, T]
    attention_mask: torch.Tensor  # plain [2B, T]; shared [B, 1, T, T] bool, True = attend
    reply_mask: torch.Tensor  # plain: [2B, T] 1 on the scored reply tokens; shared: unused
    margin: torch.Tensor  # [B] float
    tokens: int  # non-pad tokens
    reply_tokens: torch.Tensor | None = None  # [2B] scored tokens per reply
    position_ids: torch.Tensor | None = None  # shared: [B, T]
    scored: torch.Tensor | None = None  # shared: [N, 4] (row, source pos, target pos, output)
    desirable: torch.Tensor | None = None  # KTO: [B] bool labels

    @property
    def size(self) -> int:
        return len(self.index)

    def inputs(self, device: torch.device | str) -> dict[str, torch.Tensor]:
        """The scorer's keyword arguments on `device`."""
        names = ("input_ids", "attention_mask", "reply_mask", "position_ids", "scored")
        return {n: getattr(self, n).to(device) for n in names if getattr(self, n) is not None}


def _labels(pairs: list[Encoded]) -> torch.Tensor | None:
    if pairs[0].desirable is None:
        return None
    return torch.tensor([bool(e.desirable) for e in pairs])


def collate(pairs: list[Encoded], pad_id: int) -> Batch:
    seqs = [(e.prompt_ids, e.chosen_ids) for e in pairs] + [
        (e.rejected_context, e.rejected_ids) for e in pairs
    ]
    width = max(len(p) + len(y) for p, y in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    reply = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, (p, y) in enumerate(seqs):
        n = len(p) + len(y)
        ids[row, :n] = torch.tensor(p + y)
        attn[row, :n] = 1
        reply[row, len(p) : n] = 1
    return Batch(
        index=torch.tensor([e.index for e in pairs]),
        input_ids=ids,
        attention_mask=attn,
        reply_mask=reply,
        margin=torch.tensor([float(e.margin) for e in pairs]),
        tokens=int(attn.sum()),
        reply_tokens=reply.sum(1),
        desirable=_labels(pairs),
    )


def collate_shared(pairs: list[Encoded], pad_id: int) -> Batch:
    """One row `prompt|chosen|rejected` per pair (see `Batch`)."""
    width = max(len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in pairs)
    n = len(pairs)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    position = torch.zeros((n, width), dtype=torch.long)
    # Padding rows attend causally to everything: never scored, but no all-masked row (NaN).
    mask = torch.ones(width, width, dtype=torch.bool).tril().repeat(n, 1, 1, 1)
    scored, reply_tokens = [], torch.zeros(2 * n, dtype=torch.long)
    for row, e in enumerate(pairs):
        p, c, r = len(e.prompt_ids), len(e.chosen_ids), len(e.rejected_ids)
        ids[row, : p + c + r] = torch.tensor(e.prompt_ids + e.chosen_ids + e.rejected_ids)
        position[row, : p + c] = torch.arange(p + c)
        position[row, p + c : p + c + r] = torch.arange(p, p + r)
        position[row, p + c + r :] = torch.arange(p + r, p + r + width - (p + c + r))
        mask[row, 0, p + c : p + c + r, p : p + c] = False  # rejected never sees chosen
        # position t predicts token t+1; the first token of each reply is predicted by the
        # prompt's last position
        for k in range(c):
            scored.append((row, p - 1 + k, p + k, row))
        for k in range(r):
            scored.append((row, p - 1 if k == 0 else p + c + k - 1, p + c + k, n + row))
        reply_tokens[row], reply_tokens[n + row] = c, r
    return Batch(
        index=torch.tensor([e.index for e in pairs]),
        input_ids=ids,
        attention_mask=mask,
        reply_mask=torch.zeros(0),
        margin=torch.tensor([float(e.margin) for e in pairs]),
        tokens=sum(len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids) for e in pairs),
        reply_tokens=reply_tokens,
        position_ids=position,
        scored=torch.tensor(scored, dtype=torch.long),
        desirable=_labels(pairs),
    )


BUCKET = 8  # global batches per length bucket under batch_order "bucketed"


@dataclass
class Step:
    """One optimizer step on this process: its micro-batches, and the size of the global
    batch they belong to (each micro-batch's loss is weighted by its share of it)."""

    micro: list[Batch]
    global_size: int


def global_batches(
    pairs: list[Encoded], size: int, seed: int, order: str = "length"
) -> list[list[Encoded]]:
    """The run's global batches of `size` examples: a function of the examples, the seed
    and `size` alone, never of the number of processes. `length`: sorted by length (ties by
    the seed), near-equal lengths in every batch. `bucketed`: a seeded shuffle cut into
    buckets of BUCKET global batches, sorted by length within each bucket."""
    rng = random.Random(seed)
    if order == "length":
        keyed = sorted(pairs, key=lambda e: (e.length, rng.random()))
    elif order == "bucketed":
        shuffled = list(pairs)
        rng.shuffle(shuffled)
        span = size * BUCKET
        keyed = [
            e
            for i in range(0, len(shuffled), span)
            for e in sorted(shuffled[i : i + span], key=lambda e: e.length)
        ]
    else:
        raise ValueError(f"unknown batch order {order!r}; known: length, bucketed")
    return [keyed[i : i + size] for i in range(0, len(keyed), size)]


def split(group: list[Encoded], parts: int) -> list[list[Encoded]] | None:
    """`group` in `parts` contiguous micro-batches of near-equal size; None if too small."""
    if len(group) < parts:
        return None
    q, r = divmod(len(group), parts)
    bounds = [j * q + min(j, r) for j in range(parts + 1)]
    return [group[bounds[j] : bounds[j + 1]] for j in range(parts)]


def schedule(
    pairs: list[Encoded],
    batch_size: int,
    grad_accum: int,
    processes: int,
    rank: int,
    pad_id: int,
    seed: int,
    share_prompt: bool = False,
    fill: Callable[[list[Encoded]], list[Encoded]] | None = None,
    order: str = "length",
) -> tuple[list[Step], int]:
    """This process's steps of an epoch, in batch order (`epoch_order` permutes them every
    epoch, the same way for any number of processes), and the examples left out.

    Each global batch (batch_size x grad_accum x processes examples) is cut into
    grad_accum micro-batches per process; process `rank` takes its contiguous share. A last
    global batch with fewer examples than grad_accum x processes is left out. `fill`
    completes each global batch's examples (KTO: their mismatched replies)."""
    size = batch_size * grad_accum * processes
    steps, left = [], 0
    for group in global_batches(pairs, size, seed, order):
        group = fill(group) if fill else group
        parts = split(group, grad_accum * processes)
        if parts is None:
            left += len(group)
            continue
        mine = parts[rank * grad_accum : (rank + 1) * grad_accum]
        steps.append(Step([_collate(m, pad_id, share_prompt) for m in mine], len(group)))
    return steps, left


def make_batches(
    pairs: list[Encoded],
    batch_size: int,
    pad_id: int,
    seed: int,
    share_prompt: bool = False,
    fill: Callable[[list[Encoded]], list[Encoded]] | None = None,
) -> list[Batch]:
    """Length-sorted batches (near-equal lengths, little padding); ties broken by the seed.

    The batches are fixed for the run (so reference log-probs are computed in the same
    batches the policy sees); `epoch_order` shuffles their order every epoch. `fill`
    completes each batch's examples before collation (KTO: their mismatched replies).
    """
    groups = global_batches(pairs, batch_size, seed)  # one process: a batch is a global one
    return [_collate(fill(g) if fill else g, pad_id, share_prompt) for g in groups]


def _collate(pairs: list[Encoded], pad_id: int, share_prompt: bool) -> Batch:
    """Shared-prompt rows where every pair has one prompt; plain rows otherwise."""
    if share_prompt and all(e.rejected_prompt_ids is None for e in pairs):
        return collate_shared(pairs, pad_id)
    return collate(pairs, pad_id)


def epoch_order(n_batches: int, seed: int, epoch: int) -> list[int]:
    """The batch order of one epoch: a permutation seeded by (seed, epoch), so resumable."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n_batches, generator=g).tolist()
