"""Batched generation with a transformers model (CPU or GPU), left-padded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Message = dict[str, str]


def generate(
    model: Any,
    tokenizer: Any,
    chats: Sequence[Sequence[Message]],
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
) -> list[str]:
    """One reply per chat, in order. Greedy when temperature is 0."""
    import torch

    tokenizer.padding_side = "left"  # new tokens must follow every prompt directly
    prompts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in chats
    ]
    # Similar lengths batch together, so little compute goes to padding.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    replies: list[str] = [""] * len(prompts)
    torch.manual_seed(seed)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p}
        if temperature > 0
        else {"do_sample": False}
    )
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = tokenizer(
            [prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
        )
        batch = batch.to(model.device)
        with torch.no_grad():
            out = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        new = out[:, batch["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        for i, text in zip(idx, texts, strict=True):
            replies[i] = text
    return replies
