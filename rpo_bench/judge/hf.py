"""A judge run locally with a transformers chat model (default: the embedded SmolLM2-135M)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rpo_bench.judge.attempts import MAX_ATTEMPTS, log, temperature_for, try_parse
from rpo_bench.judge.base import Judge
from rpo_bench.judge.cache import JudgeCache
from rpo_bench.judge.prompt import DEFAULT_PROMPT, JudgePrompt
from rpo_bench.judge.types import Judgement, JudgeRequest, failed
from rpo_bench.models import DEFAULT_MODEL


class HFJudge(Judge):
    """Judge with a local causal LM through its chat template.

    Each attempt runs as one batch over the turns still unjudged. The first attempt is
    greedy; since greedy decoding would repeat the same text, the reference's further
    temperature-0 attempts are skipped and the temperature-0.5 ones are sampled (seeded).
    A turn whose prompt does not fit the model's context is a judge error, not truncated.
    """

    kind = "hf"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        max_new_tokens: int = 512,
        max_attempts: int = MAX_ATTEMPTS,
        batch_size: int = 4,
        device: str | None = None,
        cache: JudgeCache | str | Path | None = None,
        prompt: str | JudgePrompt = DEFAULT_PROMPT,
        rejudge_errors: bool = False,
    ) -> None:
        super().__init__(cache, prompt, rejudge_errors)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.device = device
        self._loaded: Any = None

    @property
    def name(self) -> str:
        return self.model

    @property
    def identity(self) -> str:
        # The token budget changes what a judgement can be (truncated JSON fails), so it is
        # part of the identity.
        return f"hf|{self.model}|local,max_new_tokens={self.max_new_tokens}"

    def _load(self) -> Any:
        if self._loaded is None:
            import torch

            from rpo_bench import models

            loaded = models.load(self.model)
            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            loaded.model.to(device).eval()
            self._loaded = loaded
        return self._loaded

    def _schedule(self) -> list[tuple[int, float]]:
        """(attempt number, temperature) pairs actually run."""
        runs = [(a, temperature_for(a)) for a in range(self.max_attempts)]
        return [runs[0]] + [(a, t) for a, t in runs[1:] if t > 0]

    def _generate(
        self, chats: list[list[dict[str, str]]], temperature: float, seed: int
    ) -> list[str]:
        """One completion per chat, through the rollout engine (seeded when sampled)."""
        from rpo_bench.rollout.hf import HFBackend
        from rpo_bench.rollout.settings import GenerationSettings

        backend = HFBackend(self._loaded.model, self._loaded.tokenizer, self.batch_size)
        settings = GenerationSettings(
            temperature=temperature, max_new_tokens=self.max_new_tokens, seed=seed
        )
        return [replies[0] for replies in backend.generate(chats, settings)]

    def _judge_uncached(self, request: JudgeRequest) -> Judgement:
        return self._judge_batch([request])[0]

    def _judge_batch(self, requests: list[JudgeRequest]) -> list[Judgement]:
        loaded = self._load()
        tokenizer, model = loaded.tokenizer, loaded.model
        limit = getattr(model.config, "max_position_embeddings", None)
        chats = [self.prompt.messages(r) for r in requests]
        results: list[Judgement | None] = [None] * len(requests)
        pending: list[int] = []
        for i, chat in enumerate(chats):
            text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            if limit and n_tokens + self.max_new_tokens > limit:
                results[i] = failed(
                    f"prompt of {n_tokens} tokens + {self.max_new_tokens} new tokens exceeds "
                    f"the judge model's context of {limit}",
                    0,
                    [],
                    "too_long",
                )
            else:
                pending.append(i)
        last = {i: "" for i in pending}
        outputs: dict[int, list[str]] = {i: [] for i in pending}
        runs = 0
        for attempt, temperature in self._schedule():
            if not pending:
                break
            runs += 1
            texts = self._generate([chats[i] for i in pending], temperature, seed=attempt)
            still = []
            for i, text in zip(pending, texts, strict=True):
                judgement, why = try_parse(self.prompt, text, requests[i], attempt)
                if judgement is not None:
                    judgement.attempts = runs
                    judgement.outputs = outputs[i]  # earlier unparseable answers: kept too
                    results[i] = self._store(requests[i], judgement)
                else:
                    last[i] = why
                    outputs[i].append(text)
                    still.append(i)
            log.info("hf judge attempt %d: %d of %d unparsed", attempt + 1, len(still), len(texts))
            pending = still
        for i in pending:
            message = f"judge failed after {runs} attempts; last: {last[i]}"
            results[i] = self._store(requests[i], failed(message, runs, outputs[i]))
        return [r for r in results if r is not None]
