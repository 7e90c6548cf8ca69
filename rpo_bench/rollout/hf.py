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
        position = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding shifts positions
        logits, cache = self._prefill(ids, mask, position)
        n = settings.n
        if n > 1:
            logits, mask = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
            position = position.repeat_interleave(n, 0)
            cache.batch_repeat_interleave(n)
        position = position[:, -1:]
        if self.engine.kv_cache == "reserved":
            from rpo_bench.rollout.kv import ReservedCache

            cache = ReservedCache([(x.keys, x.values) for x in cache.layers])
            mask = F.pad(mask, (0, cache.capacity - mask.shape[1]))
        live = torch.arange(ids.shape[0] * n, device=ids.device)
        tokens: list[list[int]] = [[] for _ in range(len(live))]
        for step in range(settings.max_new_tokens):
            new = _pick(logits, settings, generator)
            for row, t in zip(live.tolist(), new.tolist(), strict=True):
                tokens[row].append(t)
            keep = (~torch.isin(new, self.eos)).nonzero().squeeze(1)
            if step + 1 == settings.max_new_tokens or keep.numel() == 0:
                break
            if keep.numel() < live.numel():
                live, new, mask, position = live[keep], new[keep], mask[keep], position[keep]
                cache.batch_select_indices(keep)
            mask = _next_mask(mask, cache)
            position = position + 1
            logits = self._forward(new[:, None], mask, position, cache)
        return tokens

    def _prefill(self, ids: torch.Tensor, mask: torch.Tensor, position: torch.Tensor):
        """Prompt logits and KV cache, computed `PREFILL_ROWS` rows at a time.

        Rows arrive sorted by length, so each small group is trimmed to its own longest
        prompt: padding costs next to nothing, while decoding still runs as one batch. Each
        group's cache is left-padded back to the batch's width (masked, never attended).
        """
        from transformers import DynamicCache

        width, logits, layers = ids.shape[1], [], []
        for start in range(0, ids.shape[0], PREFILL_ROWS):
            rows = slice(start, start + PREFILL_ROWS)
            cut = int((mask[rows].sum(0) == 0).sum())  # leading columns that are all padding
            part = DynamicCache(config=self.model.config)
            logits.append(
                self._forward(ids[rows, cut:], mask[rows, cut:], position[rows, cut:], part)
            )
            pad = (0, 0, width - ids.shape[1] + cut, 0)  # left-pad the sequence axis
            layers.append([(F.pad(x.keys, pad), F.pad(x.values, pad)) for x in part.layers])
        merged = [
            tuple(torch.cat([group[i][kv] for group in layers]) for kv in (0, 1))
            for i in range(len(layers[0]))
        ]
        return torch.cat(logits), DynamicCache(merged, config=self.model.config)

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
