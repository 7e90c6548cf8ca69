"""Judge endpoint faults in the middle of judging SysBench sessions: 429 with Retry-After,
500, a timeout, a connection reset, a truncated body, malformed JSON, a wrong id set. Each
is retried with backoff and counted; a turn never judged is never scored as a pass or a
fail (its session is left out and listed); the key never reaches rows, logs or cache."""

from __future__ import annotations

import json
import logging

import pytest
from fake_judge_server import ECHO_AUTH, FakeJudgeServer, Reply, official_json

from rpo_bench.evaluate.sysbench import label_from_row, score, session_from_row
from rpo_bench.evaluate.sysbench.judging import judge_sessions, write_rows
from rpo_bench.judge import JudgeUnavailable, make_judge

KEY_ENV = "RPO_TEST_FAULT_JUDGE_KEY"
SECRET = "sk-fault-test-0123456789abcdef"


def sessions() -> list[dict]:
    """Two made-up sessions; each turn's single criterion names it ("规则s.r"), and no
    criterion appears in another turn's prompt (the history holds no checklists)."""
    return [
        {
            "system_id": sid,
            "domain": "测试",
            "scene": None,
            "rounds_related": sid == 1,
            "system_prompt": "你是一个只谈天气的助手。",
            "turns": [
                {
                    "round_index": r,
                    "user": f"第{r}个问题",
                    "alignment": "align",
                    "criteria": [
                        {
                            "criteria_id": 1,
                            "criteria_content": f"规则{sid}.{r}",
                            "criteria_type": "动作约束",
                        },
                        {
                            "criteria_id": 2,
                            "criteria_content": f"语气{sid}.{r}",
                            "criteria_type": "风格约束",
                        },
                    ],
                }
                for r in range(1, 6)
            ],
        }
        for sid in (1, 2)
    ]


GOOD = official_json({"1": "是", "2": "否"})
FAULTS = {
    # marker: (replies, what the turn ends as, calls it takes)
    "规则1.1": (
        [Reply(429, body="{}", headers={"Retry-After": "0.05"}), Reply(content=GOOD)],
        "judged",
        2,
    ),
    "规则1.2": ([Reply(500, body='{"error": "boom"}')] * 2 + [Reply(content=GOOD)], "judged", 3),
    "规则1.3": ([Reply(content=GOOD, delay=1.5), Reply(content=GOOD)], "judged", 2),
    "规则1.4": ([Reply(reset=True), Reply(content=GOOD)], "judged", 2),
    "规则1.5": (
        [Reply(body='{"choices": [{"message": {"content": "```js'), Reply(content=GOOD)],
        "judged",
        2,
    ),
    "规则2.1": ([Reply(content=f"评判：都满足 {ECHO_AUTH}")], "unjudged", 10),
    "规则2.2": (
        [Reply(content=official_json({"1": "是", "3": "否"})), Reply(content=GOOD)],
        "judged",
        2,
    ),
}


def test_each_fault_is_retried_counted_and_never_scored(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    rows_in = sessions()
    answers = {
        (s["system_id"], r): f"回答{s['system_id']}.{r}" for s in rows_in for r in range(1, 6)
    }
    cache = tmp_path / "judge.sqlite"
    script = {marker: replies for marker, (replies, _, _) in FAULTS.items()}
    with FakeJudgeServer(script) as server:
        judge = make_judge(
            "openai", model="fake", base_url=server.url, api_key_env=KEY_ENV, cache=cache,
            timeout=1.0, backoff=0.01, max_backoff=0.05, concurrency=2,
        )  # fmt: skip
        rows = judge_sessions(judge, rows_in, answers, "m")
        calls = {marker: server.count(marker) for marker in FAULTS}
    by_turn = {f"规则{r['system_id']}.{r['round_index']}": r for r in rows}
    for marker, (_, outcome, expected_calls) in FAULTS.items():
        assert calls[marker] == expected_calls, marker
        assert by_turn[marker]["judge_error"] is (outcome == "unjudged"), marker
    for marker, row in by_turn.items():  # scripted turns: GOOD; the others: 是 for every id
        if not row["judge_error"]:
            want = {"1": True, "2": False} if marker in FAULTS else {"1": True, "2": True}
            assert row["verdicts"] == want, marker
    # Scored: session 2 has an unjudged turn, so it is left out and listed, never failed.
    metrics = score(
        [label_from_row(r, "t") for r in rows],
        [session_from_row(s, "t") for s in rows_in],
        ndigits=None,
    )
    assert metrics["unjudged_sessions"] == [2] and metrics["unjudged_turns"] == [[2, 1]]
    assert (metrics["n_sessions"], metrics["n_turns"], metrics["csr"]) == (1, 5, 50.0)
    assert metrics["judge_errors"] == 1
    out = tmp_path / "labels.jsonl"
    write_rows(rows, out)
    blobs = [out.read_bytes()] + [p.read_bytes() for p in tmp_path.glob("judge.sqlite*")]
    assert all(SECRET.encode() not in b for b in blobs)
    assert SECRET not in caplog.text and SECRET not in json.dumps(rows, ensure_ascii=False)


def test_an_unusable_endpoint_stops_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    rows_in = sessions()
    answers = {(s["system_id"], r): "回答" for s in rows_in for r in range(1, 6)}
    out = tmp_path / "labels.jsonl"
    script = {"规则1.3": [Reply(401, body=f'{{"error": "bad key {ECHO_AUTH}"}}')]}
    with FakeJudgeServer(script) as server:
        judge = make_judge(
            "openai", model="fake", base_url=server.url, api_key_env=KEY_ENV, cache=None
        )
        with pytest.raises(JudgeUnavailable) as err:
            write_rows(judge_sessions(judge, rows_in, answers, "m"), out)
    assert SECRET not in str(err.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []
