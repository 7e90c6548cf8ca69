"""How many SysBench sessions get judge prompts equal to SysBench's own `get_eval_pattern`?

Builds, for every session of $RPO_BENCH_DATA/sysbench/sysbench_eval.jsonl, the official
messages as SysBench's judging loop does (the session's system and user messages, a reply
after each user turn) and compares `get_eval_pattern` on them with
`rpo_bench.evaluate.sysbench.judge_prompts`, turn by turn.

    RPO_BENCH_DATA=../shared/data python benchmarks/sysbench_official_prompt.py
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from rpo_bench.evaluate.sysbench import judge_prompts
from rpo_bench.jsonl import read_jsonl
from rpo_bench.judge.official import official_file
from rpo_bench.paths import sysbench_file


def official_prompts(
    official: ModuleType, row: dict[str, Any], replies: Iterable[str]
) -> list[str]:
    """What SysBench's do_eval passes to the judge, turn by turn: `row`'s messages with a
    reply after each user turn, through `official.get_eval_pattern` (the tests use it too)."""
    messages, out, it = [], [], iter(replies)
    for message in row["messages"]:
        messages.append(message)
        if message["role"] == "user":
            messages.append({"role": "assistant", "content": next(it)})
            criteria = row["prompt_infos"][message["content"]]["criteria"]
            out.append(official.get_eval_pattern(messages=messages, criteria=criteria))
    return out


def main() -> None:
    # SysBench's utils.py imported on its own, not through rpo_bench's loader
    spec = importlib.util.spec_from_file_location("sysbench_utils", official_file("utils.py"))
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)
    rows = list(read_jsonl(sysbench_file()))
    sessions = turns = equal_sessions = equal_turns = 0
    for row in rows:
        replies = [f'回答 {row["system_id"]}.{k}\n{{"x": 1}}' for k in range(1, 6)]
        ours = judge_prompts(row, replies)
        theirs = official_prompts(official, row, replies)
        sessions += 1
        turns += len(theirs)
        equal_turns += sum(a == b for a, b in zip(ours, theirs, strict=True))
        equal_sessions += ours == theirs
    print(f"SysBench sessions compared: {sessions}, judge prompts equal: {equal_sessions}")
    print(f"turns compared: {turns}, equal: {equal_turns}")


if __name__ == "__main__":
    main()
