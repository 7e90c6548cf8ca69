"""vLLM backend (the `gpu` extra), imported only when used."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rpo_bench.rollout.settings import GenerationSettings


class VLLMBackend:
    def __init__(self, model: str, **engine_kwargs: Any):
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError(
                "the vllm backend needs the gpu extra: pip install 'rpo-bench[gpu]'"
            ) from err
        from rpo_bench import models

        self.llm = LLM(model=models.resolve(model), **engine_kwargs)

    def generate(
        self, chats: Sequence[Sequence[dict]], settings: GenerationSettings
    ) -> list[list[str]]:
        from vllm import SamplingParams

        params = SamplingParams(
            n=settings.n,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_new_tokens,
            seed=settings.seed,
        )
        outputs = self.llm.chat([list(c) for c in chats], params, use_tqdm=False)
        return [[o.text for o in out.outputs] for out in outputs]
