"""JSON Lines: errors name the file and line; files are written atomically. A command's input
file without rows is an error naming it unless the command's `--allow-empty` lets it pass."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sized
from pathlib import Path
from typing import Any

from rpo_bench.files import read_text, write_atomic


def iter_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is an error naming file:line."""
    # split on "\n" only: JSON strings may hold other line separators (U+2028, \x0b ...)
    for number, text in enumerate(read_text(path).split("\n"), 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: not valid JSON ({err.msg})") from err
        except RecursionError:
            raise ValueError(f"{path}:{number}: JSON nested too deeply") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        yield number, row


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All objects of a JSON Lines file, blank lines skipped."""
    return [row for _, row in iter_rows(path)]


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """All rows as JSON Lines, atomically."""
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def no_rows(path: str | Path, what: str) -> str:
    """`<path>: no <what> (the file is empty)` (or `holds only blank lines`): how every
    message about an input file without rows begins."""
    why = "is empty" if Path(path).stat().st_size == 0 else "holds only blank lines"
    return f"{path}: no {what} (the file {why})"


def refuse_empty(
    path: str | Path, rows: Sized, what: str, instead: str, *, allow_empty: bool
) -> None:
    """A command's check of the `rows` it read from its input file: none is a ValueError
    naming the file, unless `allow_empty` (the `--allow-empty` flag, which writes `instead`).
    Checked on the rows read, not by reading the file again: a pipe can be read only once."""
    if not len(rows) and not allow_empty:
        raise ValueError(f"{no_rows(path, what)}; pass --allow-empty to write {instead} anyway")


def warn(message: str) -> None:
    """A warning on stderr, shaped like the CLI's errors: `rpo-bench: warning: <message>`."""
    print(f"rpo-bench: warning: {message}", file=sys.stderr)
