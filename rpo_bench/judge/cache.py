"""An on-disk SQLite cache of parsed judgements, so a rerun costs no judge calls."""

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
