"""Batches of encoded examples: collation (plain rows or one shared-prompt row per pair) and
the run's global batches, each process's share of every one, and the epoch order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rpo_bench.train.tokenize import Encoded


@dataclass
class Batch:
    """One forward's worth of pairs; log-probs come out chosen first, then rejected.

    Plain: 2B right-padded rows, `prompt|chosen` then `prompt|rejected` (an input-side
    pair: `rejected_prompt|rejected`).
    Shared prompt: B rows `prompt|chosen|rejected`; a 4D mask keeps the rejected reply
    from seeing the chosen one, and its positions restart after the prompt, so each
    reply is scored exactly as in its own row while the prompt is computed once. Packed:
    several such segments to a row, each blind to the others (`collate_shared`'s `width`).
    """

    index: torch.Tensor  # [B] pair indices
    input_ids: torch.Tensor  # plain [2B, T]; shared [R, T], R <= B rows
    attention_mask: torch.Tensor  # plain [2B, T]; shared [R, 1, T, T] bool, True = attend
    reply_mask: torch.Tensor  # plain: [2B, T] 1 on the scored reply tokens; shared: unused
    margin: torch.Tensor  # [B] float
    tokens: int  # non-pad tokens
    reply_tokens: torch.Tensor | None = None  # [2B] scored tokens per reply
    position_ids: torch.Tensor | None = None  # shared: [R, T]
    scored: torch.Tensor | None = None  # shared: [N, 4] (row, source pos, target pos, output)
    desirable: torch.Tensor | None = None  # KTO: [B] bool labels

    @property
    def size(self) -> int:
        return len(self.index)

    def inputs(self, device: torch.device | str) -> dict[str, torch.Tensor]:
        """The scorer's keyword arguments on `device`."""
        names = ("input_ids", "attention_mask", "reply_mask", "position_ids", "scored",
                 "reply_tokens")  # fmt: skip
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


def _segment(e: Encoded) -> int:
    """Tokens of a pair's shared-prompt segment `prompt|chosen|rejected`."""
    return len(e.prompt_ids) + len(e.chosen_ids) + len(e.rejected_ids)


def _pack(lengths: list[int], width: int) -> list[list[int]]:
    """Pair indices per row: first fit, longest first, into rows of `width` tokens (a pair
    longer than `width` gets a row of its own)."""
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        slot = next((k for k, f in enumerate(free) if f >= lengths[i]), None)
        if slot is None:
            slot = len(rows)
            rows.append([])
            free.append(width)
        rows[slot].append(i)
        free[slot] -= lengths[i]
    return rows


def collate_shared(pairs: list[Encoded], pad_id: int, width: int | None = None) -> Batch:
    """Rows of segments `prompt|chosen|rejected`, one pair per row or, with `width`, packed
    several to a row of at most that many tokens (see `Batch`). A segment attends only
    within itself and its positions start at 0, so every reply is scored as in its own row:
    packing removes padding, never changes a log-prob."""
    lengths = [_segment(e) for e in pairs]
    layout = _pack(lengths, width) if width else [[i] for i in range(len(pairs))]
    span = max(sum(lengths[i] for i in row) for row in layout)
    n, rows = len(pairs), len(layout)
    ids = torch.full((rows, span), pad_id, dtype=torch.long)
    position = torch.zeros((rows, span), dtype=torch.long)
    # Padding attends causally to everything: never scored, but no all-masked row (NaN).
    mask = torch.ones(span, span, dtype=torch.bool).tril().repeat(rows, 1, 1, 1)
    scored, reply_tokens = [], torch.zeros(2 * n, dtype=torch.long)
    for row, members in enumerate(layout):
        s = 0  # the segment's first column
        for j in members:
            e = pairs[j]
            p, c, r = len(e.prompt_ids), len(e.chosen_ids), len(e.rejected_ids)
            end = s + p + c + r
            ids[row, s:end] = torch.tensor(e.prompt_ids + e.chosen_ids + e.rejected_ids)
            position[row, s : s + p + c] = torch.arange(p + c)
            position[row, s + p + c : end] = torch.arange(p, p + r)
            mask[row, 0, s:end, :s] = False  # a segment never sees the pairs before it
            mask[row, 0, s + p + c : end, s + p : s + p + c] = False  # rejected never sees chosen
            # position t predicts token t+1; the first token of each reply is predicted by
            # the prompt's last position
            for k in range(c):
                scored.append((row, s + p - 1 + k, s + p + k, j))
            for k in range(r):
                source = s + p - 1 if k == 0 else s + p + c + k - 1
                scored.append((row, source, s + p + c + k, n + j))
            reply_tokens[j], reply_tokens[n + j] = c, r
            s = end
        position[row, s:] = torch.arange(span - s)
    return Batch(
        index=torch.tensor([e.index for e in pairs]),
        input_ids=ids,
        attention_mask=mask,
        reply_mask=torch.zeros(0),
        margin=torch.tensor([float(e.margin) for e in pairs]),
        tokens=sum(lengths),
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
    pack: bool = False,
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
        steps.append(Step([_collate(m, pad_id, share_prompt, pack) for m in mine], len(group)))
    return steps, left


def make_batches(
    pairs: list[Encoded],
    batch_size: int,
    pad_id: int,
    seed: int,
    share_prompt: bool = False,
    fill: Callable[[list[Encoded]], list[Encoded]] | None = None,
    pack: bool = False,
) -> list[Batch]:
    """Length-sorted batches (near-equal lengths, little padding); ties broken by the seed.

    The batches are fixed for the run (so reference log-probs are computed in the same
    batches the policy sees); `epoch_order` shuffles their order every epoch. `fill`
    completes each batch's examples before collation (KTO: their mismatched replies).
    """
    groups = global_batches(pairs, batch_size, seed)  # one process: a batch is a global one
    return [_collate(fill(g) if fill else g, pad_id, share_prompt, pack) for g in groups]


def _collate(pairs: list[Encoded], pad_id: int, share_prompt: bool, pack: bool = False) -> Batch:
    """Shared-prompt rows where every pair has one prompt, packed (`pack`) into rows as wide
    as the batch's longest pair, so no row is wider than without packing; plain rows
    otherwise."""
    if share_prompt and all(e.rejected_prompt_ids is None for e in pairs):
        width = max(_segment(e) for e in pairs) if pack else None
        return collate_shared(pairs, pad_id, width)
    return collate(pairs, pad_id)


def epoch_order(n_batches: int, seed: int, epoch: int) -> list[int]:
    """The batch order of one epoch: a permutation seeded by (seed, epoch), so resumable."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n_batches, generator=g).tolist()
