"""A small on-disk SQLite cache of texts keyed by (identity, prompt sha256). Thread-safe.

One connection shared under a lock: writes are tiny and serialised anyway, and SQLite's
own locking (WAL, busy timeout) covers other processes on the same file. Judgements and
LLM reversals are both stored here, each in its own table.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def prompt_key(messages: Sequence[dict[str, str]]) -> str:
    """sha256 of the full prompt: the cache key, so any prompt change misses the cache."""
    blob = json.dumps(list(messages), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class TextCache:
    def __init__(self, path: str | Path, table: str) -> None:
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        self.path, self.table = Path(path), table
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (identity TEXT NOT NULL, "
                "prompt_sha256 TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL, "
                "PRIMARY KEY (identity, prompt_sha256))"
            )

    def get_text(self, identity: str, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT value FROM {self.table} WHERE identity = ? AND prompt_sha256 = ?",
                (identity, key),
            ).fetchone()
        return row[0] if row else None

    def put_text(self, identity: str, key: str, text: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                f"INSERT OR REPLACE INTO {self.table} VALUES (?, ?, ?, ?)",
                (identity, key, text, time.time()),
            )

    def __bool__(self) -> bool:
        # A cache is there or not; `if cache:` must not mean "if it holds anything" (__len__).
        return True

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
