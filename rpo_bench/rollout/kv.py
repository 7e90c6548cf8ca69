"""A KV cache that decodes in place, and the attention kernel that reads it.

transformers' `DynamicCache` re-concatenates every layer's keys and values at every
step, so each step copies the whole cache: on a 2-core CPU that was 61% of a decode
step at batch 32. `ReservedCache` keeps each layer in one buffer with room to spare,
writes the new token's keys and values into its slot, and grows by `ROOM` slots only
when the room runs out. Attention reads the whole (contiguous) buffer; the attention
mask hides the slots not yet written.

`decode_attention` is SDPA for prompts (more than one query), and for one query a
grouped matmul that reads each key/value head once, where CPU SDPA is slow (bfloat16
above all) and eager attention copies every key/value head per query group.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ROOM = 64  # slots added when a buffer is full; a copy of the cache every ROOM steps
ATTENTION = "rpo_decode"


class ReservedLayer(DynamicLayer):
    """One layer's keys and values in a buffer [batch, heads, capacity, dim], filled to `length`."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, room: int):
        super().__init__()
        self.device, self.is_initialized, self.length = keys.device, True, keys.shape[2]
        self.keys = _with_room(keys, room)
        self.values = _with_room(values, room)

    def reserve(self, room: int) -> None:
        self.keys, self.values = _with_room(self.keys, room), _with_room(self.values, room)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self.length + key_states.shape[2]
        if end > self.keys.shape[2]:  # the mask was built for the buffer: the loop reserves first
            raise RuntimeError(f"KV buffer full ({self.keys.shape[2]} slots): call reserve() first")
        self.keys[:, :, self.length : end] = key_states
        self.values[:, :, self.length : end] = value_states
        self.length = end
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[2], 0  # the mask spans the buffer; unwritten slots are masked

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.keys, self.values = self.keys[indices], self.values[indices]

    def batch_repeat_interleave(self, repeats: int) -> None:
        self.keys = self.keys.repeat_interleave(repeats, 0)
        self.values = self.values.repeat_interleave(repeats, 0)

    def place(self, row: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Write one sequence's keys and values [heads, n, dim] into `row`, ending at `length`."""
        start = self.length - keys.shape[1]
        self.keys[row, :, start : self.length] = keys
        self.values[row, :, start : self.length] = values

    def drop_front(self, slots: int) -> None:
        """Forget the first `slots` slots of every row (a copy, so their memory is freed)."""
        self.keys = self.keys[:, :, slots:].contiguous()
        self.values = self.values[:, :, slots:].contiguous()
        self.length -= slots


def _with_room(x: torch.Tensor, room: int) -> torch.Tensor:
    return torch.cat([x, x.new_zeros(*x.shape[:2], room, x.shape[3])], dim=2)


class ReservedCache(Cache):
    """A cache of `ReservedLayer`s, built from prefilled keys and values per layer."""

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor]], room: int = ROOM):
        super().__init__(layers=[ReservedLayer(k, v, room) for k, v in layers])

    @classmethod
    def blank(cls, rows: int, width: int, like: list[tuple[torch.Tensor, torch.Tensor]]):
        """`rows` rows of `width` unwritten (zero) slots, shaped per layer like `like`'s
        [heads, n, dim] keys and values; `place` fills them."""

        def zeros(x: torch.Tensor) -> torch.Tensor:
            return x.new_zeros(rows, x.shape[0], width, x.shape[2])

        return cls([(zeros(k), zeros(v)) for k, v in like])

    def place(self, row: int, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """One sequence's keys and values per layer, right-aligned in `row` (see the layer)."""
        if layers[0][0].shape[1] > self.length:
            raise ValueError(f"{layers[0][0].shape[1]} keys do not fit before slot {self.length}")
        for layer, (keys, values) in zip(self.layers, layers, strict=True):
            layer.place(row, keys, values)

    def drop_front(self, slots: int) -> None:
        for layer in self.layers:
            layer.drop_front(slots)

    def make_room(self, queries: int) -> int:
        """Grow every layer so `queries` more tokens fit; return the slots added (0 or ROOM+)."""
        missing = self.length + queries - self.capacity
        if missing <= 0:
            return 0
        for layer in self.layers:
            layer.reserve(missing + ROOM)
        return missing + ROOM

    @property
    def capacity(self) -> int:
        return self.layers[0].keys.shape[2]

    @property
    def length(self) -> int:
        return self.layers[0].length


def decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """SDPA's result; for a single query, computed as a grouped matmul (softmax in float32)."""
    batch, heads, queries, dim = query.shape
    if queries > 1 or (module.training and dropout > 0):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    kv_heads = key.shape[1]
    # Query head h reads key/value head h // group, as transformers' repeat_kv lays them out.
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim)
    scores = torch.matmul(grouped, key.transpose(-1, -2)).float()
    scores = scores * (scaling if scaling is not None else dim**-0.5)
    if attention_mask is not None:  # boolean [batch, 1, 1, kv]: True = attend
        scores = scores.masked_fill(~attention_mask, float("-inf"))
    out = torch.matmul(scores.softmax(-1).to(value.dtype), value)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2), None


AttentionInterface.register(ATTENTION, decode_attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)
