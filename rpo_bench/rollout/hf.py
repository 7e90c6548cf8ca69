"""Batched generation with a transformers model (CPU or GPU), left-padded.

The decode loop is our own rather than `model.generate` for one reason: a row that
has finished (end of turn) leaves the batch and its KV cache at once, so short
replies stop costing compute while long ones finish. With n samples per prompt the
prompt is prefilled once and its cache copied n times.

The `Engine` picks the KV cache and the dtype: `REFERENCE` is transformers'
DynamicCache in float32; `FAST` (the pipeline's CPU default) writes the cache in place
(`rollout.kv`) and runs in bfloat16. `benchmarks/rollout.py` measures both.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
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
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
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
        """New token ids per (prompt, sample), row-major; finished rows leave the batch."""
        prompts = [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)]
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
