"""Batched generation with a transformers model (CPU or GPU), left-padded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rpo_bench.rollout.settings import GenerationSettings

Message = dict[str, str]


class HFBackend:
    """A local transformers model; prompts of similar length are batched together."""

    def __init__(
        self, model: str | Any = "smollm2-135m", tokenizer: Any = None, batch_size: int = 16
    ):
        if isinstance(model, str):
            from rpo_bench import models

            loaded = models.load(model)
            model, tokenizer = loaded.model, loaded.tokenizer
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.model.eval()

    def generate(
        self, chats: Sequence[Sequence[Message]], settings: GenerationSettings
    ) -> list[list[str]]:
        """`settings.n` replies per chat, in order."""
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"  # new tokens must follow every prompt directly
        prompts = [
            tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats
        ]
        # Similar lengths batch together, so little compute goes to padding.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        replies: list[list[str]] = [[] for _ in prompts]
        torch.manual_seed(settings.seed)
        sampling: dict[str, Any] = {"do_sample": False}
        if settings.temperature > 0:
            sampling = {
                "do_sample": True,
                "temperature": settings.temperature,
                "top_p": settings.top_p,
            }
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = tok(
                [prompts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
            batch = batch.to(self.model.device)
            with torch.no_grad():
                out = self.model.generate(
                    **batch,
                    max_new_tokens=settings.max_new_tokens,
                    num_return_sequences=settings.n,
                    pad_token_id=tok.pad_token_id,
                    **sampling,
                )
            texts = tok.batch_decode(
                out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
            )
            for j, i in enumerate(idx):
                replies[i] = texts[j * settings.n : (j + 1) * settings.n]
        return replies


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
