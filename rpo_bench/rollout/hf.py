"""Batched generation with a transformers model (CPU or GPU), left-padded.

The decode loop is our own rather than `model.generate` for one reason: a row that
has finished (end of turn) leaves the batch and its KV cache at once, so short
replies stop costing compute while long ones finish. With n samples per prompt the
prompt is prefilled once and its cache copied n times.

The `Engine` picks the KV cache and the dtype: `REFERENCE` is transformers'
DynamicCache in float32; `FAST` (the pipeline's CPU default) writes the cache in place
(`rollout.kv`) and runs in bfloat16. `benchmarks/rollout.py` measures both.

With `Engine.continuous` the batch does not shrink: the whole call's (prompt, sample)
rows wait in one queue, longest prompt first, and `batch_size` x n slots decode at once
(the rows `FAST` starts a batch of `batch_size` prompts with).
When a row ends, the next waiting row is prefilled (all its prompt but the last token,
which the next decode step feeds) and its keys and values are written into the freed
row of the in-place cache, right-aligned to end at the cache's current length; rows are
left-padded and carry their own position ids, so the masked slots before it cost
nothing but attention width. Longest first is the placement rule: a live row is at
least as long as its prompt, so a waiting (no longer) prompt always fits, and the cache
never grows on the left. Slots are given up only once nothing waits. Prefix reuse
(`rollout.prefix`) works as in `FAST`: a refill's prefill looks prefixes up, and each
finished row is remembered.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rpo_bench.rollout.settings import REFERENCE, Engine, GenerationSettings

Message = dict[str, str]
PREFILL_ROWS = 4  # prompts prefilled together; decoding batches them all


class HFBackend:
    """A local transformers model; prompts of similar length are batched together."""

    def __init__(
        self,
        model: str | Any = "smollm2-135m",
        tokenizer: Any = None,
        batch_size: int = 32,
        engine: Engine = REFERENCE,
    ):
        if isinstance(model, str):
            from rpo_bench import models

            loaded = models.load(model)
            model, tokenizer = loaded.model, loaded.tokenizer
        if engine != REFERENCE:
            # A copy: the caller's model (which may be trained next) keeps its dtype and
            # attention; a 135M model costs half a GB in float32.
            from rpo_bench.rollout.kv import ATTENTION

            model = copy.deepcopy(model).to(getattr(torch, engine.dtype))
            if engine.kv_cache == "reserved":
                model.set_attn_implementation(ATTENTION)
        self.model, self.tokenizer, self.batch_size, self.engine = (
            model,
            tokenizer,
            batch_size,
            engine,
        )
        self.model.eval()
        self.prefixes = None  # rollout.prefix.PrefixStore where the engine reuses prefixes
        if engine.reuse_prefix:
            from rpo_bench.rollout.prefix import PrefixStore

            self.prefixes = PrefixStore()
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos if eos is not None else tokenizer.eos_token_id]
        self.eos = torch.tensor(eos, device=model.device)

    def generate(
        self, chats: Sequence[Sequence[Message]], settings: GenerationSettings
    ) -> list[list[str]]:
        """`settings.n` replies per chat, in order."""
        prompts = [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
            for c in chats
        ]
        return self.generate_texts(prompts, settings)

    def generate_texts(
        self, prompts: Sequence[str], settings: GenerationSettings
    ) -> list[list[str]]:
        """`settings.n` continuations per rendered prompt (chat template already applied)."""
        tok = self.tokenizer
        tok.padding_side = "left"  # new tokens must follow every prompt directly
        # Similar lengths batch together, so little compute goes to padding.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        replies: list[list[str]] = [[] for _ in prompts]
        generator = torch.Generator(self.model.device).manual_seed(settings.seed)
        step = len(order) if self.engine.continuous else self.batch_size  # continuous: slots
        for start in range(0, len(order), max(step, 1)):
            idx = order[start : start + step]
            batch = tok(
                [prompts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(self.model.device)
            with torch.inference_mode():
                tokens = self.decode(
                    batch["input_ids"], batch["attention_mask"], settings, generator
                )
            texts = tok.batch_decode(tokens, skip_special_tokens=True)
            for j, i in enumerate(idx):
                replies[i] = texts[j * settings.n : (j + 1) * settings.n]
        return replies

    def decode(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        settings: GenerationSettings,
        generator: torch.Generator,
    ) -> list[list[int]]:
        """New token ids per (prompt, sample), row-major; finished rows leave the batch
        (or, with a continuous engine, hand their slot to the next waiting row)."""
        prompts = [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)]
        if self.engine.continuous:
            return self._decode_continuous(prompts, settings, generator)
        logits, cache, mask, position = self._prefill(prompts)
        n = settings.n
        if n > 1:
            logits, mask = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
            position = position.repeat_interleave(n, 0)
            cache.batch_repeat_interleave(n)
        if self.engine.kv_cache == "reserved":
            from rpo_bench.rollout.kv import ReservedCache

            cache = ReservedCache([(x.keys, x.values) for x in cache.layers])
            mask = F.pad(mask, (0, cache.capacity - mask.shape[1]))
        live = torch.arange(len(prompts) * n, device=ids.device)
        tokens: list[list[int]] = [[] for _ in range(len(live))]
        for step in range(settings.max_new_tokens):
            new = _pick(logits, settings, generator)
            for row, t in zip(live.tolist(), new.tolist(), strict=True):
                tokens[row].append(t)
            going = torch.isin(new, self.eos)
            if step + 1 == settings.max_new_tokens:
                going[:] = True
            if self.prefixes is not None and going.any():
                self._remember(going.nonzero().squeeze(1), live, mask, cache, prompts, tokens, n)
            keep = (~going).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            if keep.numel() < live.numel():
                live, new, mask, position = live[keep], new[keep], mask[keep], position[keep]
                cache.batch_select_indices(keep)
            mask = _next_mask(mask, cache)
            position = position + 1
            logits = self._forward(new[:, None], mask, position, cache)
        return tokens

    def _decode_continuous(
        self, prompts: list[list[int]], settings: GenerationSettings, generator: torch.Generator
    ) -> list[list[int]]:
        """`decode` with continuous batching: `batch_size` x n slots, refilled from one queue."""
        n = settings.n
        # Longest prompt first: every waiting prompt then fits in a freed slot (module doc).
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        waiting = deque(i * n + s for i in order for s in range(n))
        tokens: list[list[int]] = [[] for _ in range(len(prompts) * n)]
        held: dict[int, list] = {}  # prompt -> its prefilled keys/values while samples wait
        slots, free = None, list(range(min(self.batch_size * n, len(waiting))))
        while (slots := self._refill(slots, free, waiting, held, prompts, n)) is not None:
            slots.mask = _next_mask(slots.mask, slots.cache)
            logits = self._forward(slots.feed[:, None], slots.mask, slots.position, slots.cache)
            new = _pick(logits, settings, generator)
            free = self._record(new, slots.seqs, tokens, settings)
            if self.prefixes is not None and free:
                done, seqs = torch.tensor(free), torch.tensor(slots.seqs)
                self._remember(done, seqs, slots.mask, slots.cache, prompts, tokens, n)
            slots.feed, slots.position = new, slots.position + 1
        return tokens

    def _record(self, new, seqs: list[int], tokens, settings: GenerationSettings) -> list[int]:
        """Append each slot's new token to its sequence; return the slots whose sequence ended."""
        ended = torch.isin(new, self.eos).tolist()
        done = []
        for slot, (seq, token, end) in enumerate(zip(seqs, new.tolist(), ended, strict=True)):
            tokens[seq].append(token)
            if end or len(tokens[seq]) == settings.max_new_tokens:
                done.append(slot)
        return done

    def _refill(self, slots, free: list[int], waiting: deque, held: dict, prompts, n: int):
        """Give each free slot the next waiting sequence; give up the free slots nothing waits
        for. The first call starts the slots; None once no slot is left."""
        if slots is not None and not free:
            return slots
        seqs = [waiting.popleft() for _ in range(min(len(free), len(waiting)))]
        if seqs:
            layers = self._held_prompts(seqs, held, prompts, n)
            if slots is None:
                width = max(kv[0][0].shape[1] for kv in layers)
                slots = _Slots.start(len(free), width, layers[0], self.model.device)
            for slot, seq, kv in zip(free, seqs, layers, strict=False):
                slots.place(slot, seq, kv, prompts[seq // n][-1])
        if slots is None:
            return None
        if len(seqs) < len(free):
            gone = set(free[len(seqs) :])
            kept = [i for i in range(len(slots.seqs)) if i not in gone]
            if not kept:
                return None
            slots.keep(kept)
        slots.trim()
        return slots

    def _held_prompts(self, seqs: list[int], held: dict, prompts, n: int) -> list[list]:
        """Per sequence, its prompt's keys and values but for the last token (the decode step
        feeds that one): prefilled once per prompt, held until its last sample has a slot."""
        new = [i for i in dict.fromkeys(s // n for s in seqs) if i not in held]
        held.update(zip(new, self._prompt_layers([prompts[i][:-1] for i in new]), strict=True))
        layers = [held[s // n] for s in seqs]
        for s in seqs:
            if s % n == n - 1:
                del held[s // n]
        return layers

    def _prompt_layers(self, prompts: list[list[int]]) -> list[list]:
        """Each prompt's keys and values per layer [heads, len(prompt), dim], no padding
        (prefix reuse included: `_prefill`)."""
        filled = iter(self._packed([p for p in prompts if p]))
        empty = None  # a one-token prompt holds no keys: shapes from a one-token prefill
        out = []
        for p in prompts:
            if not p and empty is None:
                like = self._packed([[self.tokenizer.pad_token_id]])[0]
                empty = [(k[:, :0], v[:, :0]) for k, v in like]
            out.append(next(filled) if p else empty)
        return out

    def _packed(self, prompts: list[list[int]]) -> list[list]:
        """`_prefill`'s keys and values, per prompt and layer, without the masked slots."""
        if not prompts:
            return []
        _, cache, mask, _ = self._prefill(prompts)
        rows = mask.bool()
        return [
            [(x.keys[i][:, rows[i]], x.values[i][:, rows[i]]) for x in cache.layers]
            for i in range(len(prompts))
        ]

    def _remember(self, rows, live, mask, cache, prompts, tokens, n) -> None:
        """Keep the keys and values of finished rows (prompt + reply so far) for reuse."""
        from rpo_bench.rollout.prefix import Prefix

        for row in rows.tolist():
            seq = live[row].item()
            slots = mask[row].bool()
            layers = [(x.keys[row][:, slots], x.values[row][:, slots]) for x in cache.layers]
            # the last sampled token was never fed, so it has no keys or values
            prompt = prompts[seq // n]
            ids = prompt + tokens[seq][:-1]
            assert len(ids) == int(slots.sum()), "KV slots and tokens disagree"
            self.prefixes.add(Prefix(ids, len(prompt), layers))

    def _prefill(self, prompts: list[list[int]]):
        """Logits, KV cache, attention mask and last position of each prompt.

        Prompts arrive sorted by length and are prefilled `PREFILL_ROWS` at a time, each
        group padded only to its own longest prompt: padding costs next to nothing, while
        decoding still runs as one batch. A prompt that starts with a remembered sequence
        (`rollout.prefix`) takes its keys and values and computes only the rest; a row
        then reads [padding | reused | padding | new]. Each group's cache is left-padded
        back to the batch's width (masked, never attended).
        """
        from transformers import DynamicCache

        pad_id = self.tokenizer.pad_token_id
        device, groups = self.model.device, []
        for start in range(0, len(prompts), PREFILL_ROWS):
            rows = prompts[start : start + PREFILL_ROWS]
            found = [self.prefixes.match(p) if self.prefixes else (0, None) for p in rows]
            reused = [k for k, _ in found]
            fresh = [len(p) - k for p, k in zip(rows, reused, strict=True)]
            past, width = max(reused), max(fresh)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), past + width), dtype=torch.long)
            position = torch.zeros((len(rows), width), dtype=torch.long)
            for i, (p, k, m) in enumerate(zip(rows, reused, fresh, strict=True)):
                ids[i, width - m :] = torch.tensor(p[k:])
                mask[i, past - k : past] = 1
                mask[i, past + width - m :] = 1
                position[i, width - m :] = torch.arange(k, len(p))
            part = DynamicCache(config=self.model.config)
            if past:
                part = DynamicCache(_reused_layers(found, past), config=self.model.config)
            ids, mask, position = ids.to(device), mask.to(device), position.to(device)
            logits = self._forward(ids, mask, position, part)
            groups.append((logits, [(x.keys, x.values) for x in part.layers], mask))
        full = max(g[2].shape[1] for g in groups)

        def left_pad(x: torch.Tensor) -> torch.Tensor:  # on the sequence axis, to `full`
            return F.pad(x, (0, 0, full - x.shape[2], 0)) if x.dim() == 4 else x

        merged = [
            tuple(torch.cat([left_pad(g[1][i][kv]) for g in groups]) for kv in (0, 1))
            for i in range(len(groups[0][1]))
        ]
        mask = torch.cat([F.pad(g[2], (full - g[2].shape[1], 0)) for g in groups])
        last = torch.tensor([[len(p) - 1] for p in prompts], device=device)
        cache = DynamicCache(merged, config=self.model.config)
        return torch.cat([g[0] for g in groups]), cache, mask, last

    def _forward(self, ids, mask, position, cache) -> torch.Tensor:
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=position,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1].float()


@dataclass
class _Slots:
    """The rows of a continuous decode: slot i decodes sequence `seqs[i]` (prompt * n +
    sample), its keys and values right-aligned in row i of an in-place cache."""

    cache: Any  # rollout.kv.ReservedCache
    mask: torch.Tensor  # [slots, capacity]: 1 where the slot's sequence has keys and values
    position: torch.Tensor  # [slots, 1]: the position of the token each slot is fed next
    feed: torch.Tensor  # [slots]: the token each slot is fed next
    seqs: list[int]

    @classmethod
    def start(cls, rows: int, width: int, like: list, device) -> _Slots:
        from rpo_bench.rollout.kv import ReservedCache

        cache = ReservedCache.blank(rows, width, like)
        mask = torch.zeros(rows, cache.capacity, dtype=torch.long, device=device)
        position = torch.zeros(rows, 1, dtype=torch.long, device=device)
        return cls(cache, mask, position, position[:, 0].clone(), [-1] * rows)

    def place(self, slot: int, seq: int, layers: list, last_token: int) -> None:
        """Sequence `seq`'s prompt, prefilled but for `last_token`, which it is fed next."""
        self.cache.place(slot, layers)
        held, end = layers[0][0].shape[1], self.cache.length
        self.mask[slot] = 0
        self.mask[slot, end - held : end] = 1
        self.position[slot] = held
        self.feed[slot] = last_token
        self.seqs[slot] = seq

    def keep(self, slots: list[int]) -> None:
        index = torch.tensor(slots, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.position = self.mask[index], self.position[index]
        self.feed = self.feed[index]
        self.seqs = [self.seqs[i] for i in slots]

    def trim(self) -> None:
        """Drop the leading cache slots no live row reads, once ROOM of them are dead: the
        cache then spans the live rows, not every step of the call (a copy each time)."""
        from rpo_bench.rollout.kv import ROOM

        first = int(self.mask.any(0).int().argmax())
        if first >= ROOM:
            self.cache.drop_front(first)
            self.mask = self.mask[:, first:]


def _reused_layers(found: list, past: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, the group's reused keys and values, right-aligned in `past` slots."""
    entry = next(e for _, e in found if e is not None)
    out = []
    for layer, (k0, v0) in enumerate(entry.layers):
        keys = k0.new_zeros(len(found), k0.shape[0], past, k0.shape[2])
        values = v0.new_zeros(len(found), v0.shape[0], past, v0.shape[2])
        for i, (n, e) in enumerate(found):
            if n:
                keys[i, :, past - n :] = e.layers[layer][0][:, :n]
                values[i, :, past - n :] = e.layers[layer][1][:, :n]
        out.append((keys, values))
    return out


def _next_mask(mask: torch.Tensor, cache: Any) -> torch.Tensor:
    """The attention mask with the next token's slot switched on."""
    from rpo_bench.rollout.kv import ReservedCache

    if not isinstance(cache, ReservedCache):
        return torch.cat([mask, mask.new_ones(len(mask), 1)], dim=1)
    mask = F.pad(mask, (0, cache.make_room(1)))
    mask[:, cache.length] = 1
    return mask


def _pick(logits: torch.Tensor, s: GenerationSettings, generator: torch.Generator) -> torch.Tensor:
    """Greedy at temperature 0, else nucleus sampling (top_p) at the temperature."""
    if s.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / s.temperature, dim=-1)
    if s.top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # Drop a token when the tokens ranked above it already reach top_p (the first stays).
        drop = sorted_p.cumsum(-1) - sorted_p >= s.top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def generate(
    model: Any,
    tokenizer: Any,
    chats: Sequence[Sequence[Message]],
    max_new_tokens: int = 256,
    batch_size: int = 16,
) -> list[str]:
    """One greedy reply per chat (shorthand for scripts)."""
    backend = HFBackend(model, tokenizer, batch_size=batch_size)
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    return [r[0] for r in backend.generate(chats, settings)]


class HFCompleter:
    """A local model as an `rpo_bench.llm.Completer`: greedy (temperature 0), batched."""

    def __init__(self, backend: HFBackend, max_new_tokens: int = 64) -> None:
        self.backend = backend
        self.settings = GenerationSettings(temperature=0.0, max_new_tokens=max_new_tokens)
        name = getattr(backend.model.config, "_name_or_path", "") or type(backend.model).__name__
        self.identity = f"hf|{name}|max_new_tokens={max_new_tokens}"

    def complete_many(self, chats: Sequence[Sequence[dict[str, str]]]) -> list[str]:
        return [r[0] for r in self.backend.generate(chats, self.settings)]
