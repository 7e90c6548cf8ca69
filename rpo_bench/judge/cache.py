"""An on-disk SQLite cache of parsed judgements, so a rerun costs no judge calls."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rpo_bench.judge.base import Judgement

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    identity TEXT NOT NULL,       -- judge kind|model|endpoint
    prompt_sha256 TEXT NOT NULL,  -- sha256 of the full prompt
    judgement TEXT NOT NULL,      -- {"verdicts", "verdicts_raw", "reasoning", "attempts"}
    created REAL NOT NULL,
    PRIMARY KEY (identity, prompt_sha256)
)
"""


class JudgeCache:
    """Parsed judgements keyed by (judge identity, prompt sha256). Thread-safe.

    One connection shared under a lock: writes are tiny and serialised anyway, and
    SQLite's own locking (WAL, busy timeout) covers other processes on the same file.
    Only successful judgements are stored; no request headers or keys ever reach it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def get(self, identity: str, prompt_sha256: str) -> Judgement | None:
        """The cached judgement, or None."""
        from rpo_bench.judge.base import Judgement

        with self._lock:
            row = self._db.execute(
                "SELECT judgement FROM judgements WHERE identity = ? AND prompt_sha256 = ?",
                (identity, prompt_sha256),
            ).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
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
        blob = json.dumps(data, ensure_ascii=False, sort_keys=True)
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?)",
                (identity, prompt_sha256, blob, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"JudgeCache({str(self.path)!r})"
