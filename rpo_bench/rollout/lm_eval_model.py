"""lm-eval model `rpo_fast`: lm-eval's HF model, generating through rpo_bench's decode loop.

Everything but generation (tokenization, chat template, truncation, stop strings,
log-likelihoods) is lm-eval's `HFLM`; `generate_until` batches reach
`HFBackend`'s loop with the chosen `Engine` (default `fast`: in-place KV cache,
bfloat16). Importing this module registers the name:

    rpo-bench eval --engine fast ...                       (rpo_bench's harness)
    rpo-lm-eval --model rpo_fast --model_args pretrained=DIR,engine=fast ...   (lm-eval's CLI)
"""

from __future__ import annotations

from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from rpo_bench.rollout.hf import HFBackend
from rpo_bench.rollout.settings import GenerationSettings
from rpo_bench.rollout.settings import engine as resolve_engine

NAME = "rpo_fast"


@register_model(NAME)
class FastLM(HFLM):
    def __init__(self, pretrained: Any, engine: str = "fast", **kwargs: Any):
        self.engine = resolve_engine(engine)  # an unknown name fails before the model loads
        kwargs.setdefault("dtype", "float32")  # log-likelihoods stay in float32
        super().__init__(pretrained=pretrained, **kwargs)
        # `rollout`, not `backend`: HFLM keeps "causal" | "seq2seq" there
        self.rollout = HFBackend(self.model, self.tokenizer, engine=self.engine)

    def _model_generate(
        self,
        context: torch.Tensor,
        max_length: int,
        stop: list[str],
        attention_mask: torch.Tensor | None = None,
        **generation_kwargs: Any,
    ) -> torch.Tensor:
        """context + new tokens, right-padded; lm-eval cuts at the stop strings afterwards."""
        temperature = float(generation_kwargs.get("temperature") or 0.0)
        if generation_kwargs.get("do_sample") is False:
            temperature = 0.0
        settings = GenerationSettings(
            temperature=temperature,
            top_p=float(generation_kwargs.get("top_p") or 1.0),
            max_new_tokens=max_length - context.shape[1],
            seed=int(generation_kwargs.get("seed") or 0),
        )
        if attention_mask is None:
            attention_mask = torch.ones_like(context)
        generator = torch.Generator(context.device).manual_seed(settings.seed)
        with torch.inference_mode():
            new = self.rollout.decode(context, attention_mask, settings, generator)
        width = max(map(len, new))
        pad = self.tokenizer.pad_token_id
        rows = [row + [pad] * (width - len(row)) for row in new]
        return torch.cat([context, torch.tensor(rows, device=context.device)], dim=1)
