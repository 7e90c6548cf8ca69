"""An on-disk SQLite cache of judgements, so a rerun costs no judge calls.

Two tables in one file: `judgements` holds parsed, successful judgements; `answers` holds
every raw completion the judge gave for a prompt, unparseable ones included, so a parser
change can read old answers again without calling the judge."""

from __future__ import annotations

import json
from pathlib import Path

from rpo_bench.judge.types import Judgement
from rpo_bench.textcache import TextCache


class JudgeCache(TextCache):
    """Parsed judgements keyed by (judge identity, prompt sha256), stored as JSON
    {"verdicts", "verdicts_raw", "reasoning", "attempts"}. Only successful judgements are
    stored; no request headers or keys ever reach it."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "judgements")
        self.answers = TextCache(path, "answers")

    def get_answers(self, identity: str, prompt_sha256: str) -> list[str]:
        """Every raw completion stored for the prompt, oldest first."""
        text = self.answers.get_text(identity, prompt_sha256)
        return json.loads(text) if text is not None else []

    def add_answers(self, identity: str, prompt_sha256: str, answers: list[str]) -> None:
        """Append raw completions (already scrubbed of secrets by the client)."""
        if answers:
            stored = self.get_answers(identity, prompt_sha256) + list(answers)
            self.answers.put_text(identity, prompt_sha256, json.dumps(stored, ensure_ascii=False))

    def get(self, identity: str, prompt_sha256: str) -> Judgement | None:
        """The cached judgement, or None."""
        text = self.get_text(identity, prompt_sha256)
        if text is None:
            return None
        data = json.loads(text)
        return Judgement(
            verdicts=data["verdicts"],
            reasoning=data["reasoning"],
            raw=data["verdicts_raw"],
            attempts=data.get("attempts", 0),
        )

    def put(self, identity: str, prompt_sha256: str, judgement: Judgement) -> None:
        """Store a successful judgement; a failed one is refused so a rerun tries again."""
        if judgement.error is not None:
            raise ValueError("failed judgements are not cached")
        data = {
            "verdicts": judgement.verdicts,
            "verdicts_raw": judgement.raw,
            "reasoning": judgement.reasoning,
            "attempts": judgement.attempts,
        }
        self.put_text(identity, prompt_sha256, json.dumps(data, ensure_ascii=False, sort_keys=True))
