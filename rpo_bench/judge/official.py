"""SysBench's own judge prompt and answer format (the `official` judge prompt).

The prompt is produced by SysBench's `get_eval_pattern(messages, criteria)` from its
`utils.py` at the pinned commit, read at run time: SysBench declares no licence, so the
file is never committed. It comes from `$RPO_BENCH_DATA/sysbench/official/utils.py`, else
it is downloaded from the pinned commit into the rpo_bench cache; either way its sha256
must match before it is imported.

The answer is parsed as SysBench's judging loop (`eval_system_bench.py`) parses it, except
that Python literals are read with `ast.literal_eval` (or JSON), never `eval`:
- the completion, stripped, minus its first 7 and last 3 characters (the ```json fence);
- a dict with keys 评判理由 and 评判结果, the latter a dict;
- its keys, read as integers, equal the checklist ids.
Values other than 是/否 are accepted, as the official loop accepts them (its check of the
values is not asserted), and count as undecided: not satisfied for CSR, no fail for ISR.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import sys
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rpo_bench import paths
from rpo_bench.files import write_atomic
from rpo_bench.judge.types import JudgeRequest, ParseError

REPO = "PKU-Baichuan-MLSystemLab/SysBench"
COMMIT = "627ffa8010d00e270426975b33b1fb7a0a635602"
SHA256 = {
    "utils.py": "ce9c04c4fcf13e7d7e5d3ca4dbc2a7ed17b630e84bfe013b2c7fb0e6237c84dc",
    "eval_system_bench.py": "7825dae6e2080ff320507f9cfef7eb8c54f5c3dd19d9fd94c7f5b395330a2a87",
}
REASON, RESULT = "评判理由", "评判结果"
YES, NO = "是", "否"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def official_file(name: str = "utils.py") -> Path:
    """SysBench's `name` at the pinned commit, sha256-checked: from $RPO_BENCH_DATA, else
    downloaded once into the cache."""
    want = SHA256[name]
    root = paths.data_dir()
    local = root / "sysbench" / "official" / name if root else None
    if local is not None and local.exists():
        got = _sha256(local.read_bytes())
        if got != want:
            raise ValueError(f"{local}: sha256 {got} is not SysBench {COMMIT[:7]}'s {want}")
        return local
    cached = paths.cache_dir() / "sysbench" / "official" / COMMIT[:12] / name
    if cached.exists() and _sha256(cached.read_bytes()) == want:
        return cached
    url = f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/{name}"
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            data = resp.read()
    except OSError as err:
        raise FileNotFoundError(
            f"SysBench's official {name} is needed for the official judge prompt: not in "
            f"$RPO_BENCH_DATA/sysbench/official/ (RPO_BENCH_DATA={root}) and {url} could not "
            f"be fetched ({type(err).__name__}: {err}). Put the file there, or choose the "
            "project's prompt (judge_prompt: rpo_bench)."
        ) from err
    got = _sha256(data)
    if got != want:
        raise ValueError(f"{url}: sha256 {got} is not the pinned {want}; refusing to use it")
    write_atomic(cached, data.decode("utf-8"))
    return cached


@functools.cache
def get_eval_pattern() -> Callable[[list[dict[str, str]], dict[str, Any]], str]:
    """SysBench's `get_eval_pattern`, imported from the verified `utils.py`."""
    path = official_file("utils.py")
    spec = importlib.util.spec_from_file_location("_sysbench_official_utils", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.get_eval_pattern


def official_messages(request: JudgeRequest) -> list[dict[str, str]]:
    """The turn as SysBench's loop holds it: system, earlier rounds, current user and answer."""
    messages = [{"role": "system", "content": request.system}]
    for user, answer in request.history:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    messages += [
        {"role": "user", "content": request.user},
        {"role": "assistant", "content": request.answer},
    ]
    return messages


def official_criteria(checklist: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The checklist as SysBench's `prompt_infos[...]["criteria"]`: id -> criterion, in order."""
    return {
        str(c["criteria_id"]): {
            "criteria_id": c["criteria_id"],
            "criteria_content": c["criteria_content"],
            "criteria_type": c["criteria_type"],
        }
        for c in checklist
    }


def render_prompt(request: JudgeRequest) -> str:
    """SysBench's judge prompt for one turn, made by SysBench's own code."""
    return get_eval_pattern()(official_messages(request), official_criteria(request.checklist))


def _literal(body: str) -> Any:
    try:
        return ast.literal_eval(body)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise ParseError("the fenced block is neither a Python nor a JSON literal") from None


def parse_judgement(
    text: str, ids: Sequence[str]
) -> tuple[dict[str, bool | None], dict[str, str], str]:
    """(verdicts, raw verdict strings, reasoning) as SysBench's loop reads the completion."""
    obj = _literal(text.strip()[7:-3])
    if not isinstance(obj, dict) or REASON not in obj or not isinstance(obj.get(RESULT), dict):
        raise ParseError(f"not a dict with {REASON!r} and a dict {RESULT!r}")
    results: dict[str, Any] = {}
    for key, value in obj[RESULT].items():
        try:
            results[str(int(key))] = value
        except (TypeError, ValueError):
            raise ParseError(f"verdict key {key!r} is not an integer") from None
    want = {str(int(i)) for i in ids}
    if set(results) != want or len(results) != len(obj[RESULT]):
        raise ParseError(
            f"verdict ids {sorted(results, key=int)} != checklist ids {sorted(want, key=int)}"
        )
    verdicts: dict[str, bool | None] = {}
    raw: dict[str, str] = {}
    for cid in ids:
        value = results[cid]
        verdicts[cid] = True if value == YES else False if value == NO else None
        raw[cid] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return verdicts, raw, str(obj[REASON])
