"""Every reader of a user file, fed spoiled copies of a valid file: truncated lines, wrong
types, missing fields, non-UTF-8 bytes, empty files, very long lines. Each either reads the
file or raises ValueError naming the file (and, for a spoiled line, its line number); never
another exception, which the CLI would show as a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpo_bench.ablate import config as ablate_config
from rpo_bench.data import conversations as cv
from rpo_bench.data import verifiable
from rpo_bench.data.freetext import read_system_prompts
from rpo_bench.evaluate.multi_if.data import read_rows
from rpo_bench.evaluate.sysbench.data import load_labels, load_sessions
from rpo_bench.pairs import read_samples
from rpo_bench.paths import data_dir
from rpo_bench.train.config import TrainConfig
from rpo_bench.train.examples import read_pairs

from conftest import REPO

WRONG = [None, 0, -1, 1.5, True, "", "x" * 3, [], {}, [1, "a"], {"k": None}]


def _samples() -> str:
    constraints = [{"id": "punctuation:no_comma", "kwargs": {}}]
    rows = [
        {
            "id": f"t{i}",
            "history": [],
            "task": "Describe the sea.",
            "constraints": constraints,
            "constraint_slot": "user",
            "responses": [{"text": f"r{k}", "verdicts": [k % 2 == 0]} for k in range(3)],
        }
        for i in range(3)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


def _pairs() -> str:
    rows = [
        {
            "id": f"p{i}",
            "prompt": [{"role": "user", "content": f"Describe the sea {i}."}],
            "chosen": "calm",
            "rejected": "rough, grey",
            "margin": 1,
        }
        for i in range(3)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


def _conversations(tmp: Path) -> str:
    path = tmp / "c.jsonl"
    cv.write_conversations(path, verifiable.build(3, turns=2, k=2, seed=1))
    return path.read_text("utf-8")


def _shared(*parts: str, lines: int) -> str:
    root = data_dir()
    path = root.joinpath(*parts) if root else None
    if path is None or not path.exists():
        pytest.skip(f"{'/'.join(parts)} not available (set RPO_BENCH_DATA)")
    return "".join(path.read_text("utf-8").splitlines(keepends=True)[:lines])


def _train_config(path: Path) -> TrainConfig:
    return TrainConfig.from_yaml(path)


def _system_prompts() -> str:
    row = {
        "id": "sp",
        "system": "You are a travel agent.",
        "criteria": [
            {"criteria_id": i, "criteria_content": f"Rule {i}.", "criteria_type": "format"}
            for i in (1, 2)
        ],
        "turns": ["Where should I eat?", "And then?"],
    }
    return "".join(json.dumps(row | {"id": f"sp{i}"}) + "\n" for i in range(3))


READERS = {
    "system_prompts": (read_system_prompts, lambda tmp: _system_prompts(), "jsonl"),
    "samples": (read_samples, lambda tmp: _samples(), "jsonl"),
    "pairs": (read_pairs, lambda tmp: _pairs(), "jsonl"),
    "conversations": (cv.read_conversations, _conversations, "jsonl"),
    "sysbench_sessions": (
        load_sessions,
        lambda tmp: _shared("sysbench", "sysbench_eval.jsonl", lines=2),
        "jsonl",
    ),
    "sysbench_labels": (
        load_labels,
        lambda tmp: _shared("sysbench", "judge_labels", "gpt4o.jsonl", lines=6),
        "jsonl",
    ),
    "multi_if_csv": (
        read_rows,
        lambda tmp: (REPO / "tests" / "fixtures" / "multi_if_fixture.csv").read_text("utf-8"),
        "csv",
    ),
    "ablation_config": (
        ablate_config.load,
        lambda tmp: (REPO / "ablations" / "smoke.yaml").read_text("utf-8"),
        "yaml",
    ),
    "train_config": (
        _train_config,
        lambda tmp: (REPO / "configs" / "train" / "rpo_lora.yaml").read_text("utf-8"),
        "yaml",
    ),
}


@st.composite
def spoiled(draw, text: str, kind: str) -> tuple[bytes, int | None]:
    """(file bytes, the 1-based line spoiled or None)."""
    lines = text.splitlines(keepends=True)
    how = draw(st.sampled_from(["truncate", "field", "drop", "bytes", "empty", "long", "swap"]))
    if how == "empty":
        return b"", None
    n = draw(st.integers(0, len(lines) - 1))
    line = lines[n]
    if how == "truncate":
        lines[n] = line[: draw(st.integers(0, max(len(line) - 2, 0)))] + "\n"
    elif how == "bytes":
        at = draw(st.integers(0, len(line.rstrip("\n").encode())))  # on this line
        raw = [x.encode() for x in lines]
        raw[n] = (
            raw[n][:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80\x80"])) + raw[n][at:]
        )
        return b"".join(raw), n + 1
    elif how == "long":
        lines[n] = line.rstrip("\n")[:-1] + "x" * 20_000 + line.rstrip("\n")[-1:] + "\n"
    elif kind == "jsonl" and how in ("field", "drop", "swap"):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return "".join(lines).encode(), None
        if not isinstance(row, dict) or not row:
            return "".join(lines).encode(), None
        key = draw(st.sampled_from(sorted(row)))
        if how == "drop":
            del row[key]
        elif how == "field":
            row[key] = draw(st.sampled_from(WRONG))
        else:  # a nested value replaced
            value = row[key]
            if isinstance(value, list) and value and isinstance(value[0], dict) and value[0]:
                inner = draw(st.sampled_from(sorted(value[0])))
                value[0][inner] = draw(st.sampled_from(WRONG))
        lines[n] = json.dumps(row, ensure_ascii=False) + "\n"
    elif kind == "yaml" and how in ("field", "drop", "swap"):
        data = yaml.safe_load(text)
        section = draw(st.sampled_from(sorted(data)))
        if how == "drop" or not isinstance(data[section], dict) or not data[section]:
            data[section] = draw(st.sampled_from(WRONG))
        else:
            key = draw(st.sampled_from(sorted(data[section])))
            data[section][key] = draw(st.sampled_from(WRONG))
        return yaml.safe_dump(data, allow_unicode=True).encode(), None
    elif kind == "csv":
        cells = line.split(",")
        cells[draw(st.integers(0, len(cells) - 1))] = draw(st.sampled_from(['"', "", "[", "{x"]))
        lines[n] = ",".join(cells)
    return "".join(lines).encode(), n + 1 if kind == "jsonl" else None


@pytest.mark.parametrize("name", sorted(READERS))
def test_spoiled_files_give_a_clear_error_or_read(name, tmp_path):
    read, make, kind = READERS[name]
    valid = make(tmp_path)
    path = tmp_path / f"input.{kind}"
    path.write_text(valid, "utf-8")
    read(path)  # the unspoiled file reads

    @settings(
        max_examples=40,
        derandomize=True,  # the same cases every run: a fuzz test must not be flaky
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.data())
    def check(data):
        content, line = data.draw(spoiled(valid, kind))
        path.write_bytes(content)
        try:
            read(path)
        except ValueError as err:
            message = str(err)
            assert str(path) in message, message
            if line is not None and "not UTF-8" in message:
                assert f"{path}:{line}" in message, message

    check()
