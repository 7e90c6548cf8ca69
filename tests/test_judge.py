"""SysBench judges: prompt, strict parsing, the openai judge against a fake server (retries,
errors, cache, concurrency, key hygiene), replay on the real labels, calibration, hf."""

from __future__ import annotations

import argparse
import json
import logging

import pytest
from fake_judge_server import ECHO_AUTH, FakeJudgeServer, Reply, verdict_json

from rpo_bench.evaluate.sysbench.calibrate import add_parser, agreement, calibrate
from rpo_bench.evaluate.sysbench.judging import judge_sessions
from rpo_bench.judge import (
    JudgeCache,
    JudgePrompt,
    JudgeRequest,
    JudgeUnavailable,
    ParseError,
    judge_prompt,
    make_judge,
    parse_judgement,
    render_prompt,
)
from rpo_bench.judge.attempts import MAX_ATTEMPTS
from rpo_bench.paths import sysbench_file
from rpo_bench.textcache import prompt_key

SECRET = "sk-test-DO-NOT-LEAK-7f3a9c1e5b"
KEY_ENV = "RPO_TEST_JUDGE_KEY"
LABEL_KEYS = {
    "model",
    "system_id",
    "round_index",
    "answer",
    "judge",
    "reasoning",
    "verdicts",
    "verdicts_raw",
    "all_pass",
}

CHECKLIST = [
    {"criteria_id": 1, "criteria_content": "回答须使用中文", "criteria_type": "格式约束"},
    {"criteria_id": 2, "criteria_content": "须拒绝与旅游无关的问题", "criteria_type": "动作约束"},
    {"criteria_id": 3, "criteria_content": "语气友好", "criteria_type": "风格约束"},
]
GOOD = verdict_json({"1": "是", "2": "否", "3": "是"})
WRONG_IDS = verdict_json({"1": "是", "2": "否"})


def request(marker: str, history=(), checklist=CHECKLIST) -> JudgeRequest:
    return JudgeRequest(
        system="你是武汉旅游助手，只回答与武汉旅游有关的问题。",
        history=list(history),
        user=f"推荐一个景点 {marker}",
        answer="推荐黄鹤楼。",
        checklist=checklist,
    )


def openai_judge(server: FakeJudgeServer, **extra):
    # These tests script answers in the project's format; the official one has its own tests.
    options = {"backoff": 0.01, "max_backoff": 0.05, "api_key_env": KEY_ENV, "prompt": "rpo_bench"}
    options |= extra
    return make_judge("openai", model="fake-judge", base_url=server.url, **options)


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


@pytest.fixture
def sysbench():
    try:
        return sysbench_file("sysbench_eval.jsonl"), sysbench_file("judge_labels/gpt4o.jsonl")
    except FileNotFoundError as err:
        pytest.skip(f"SysBench data not available (set RPO_BENCH_DATA): {err}")


# --- prompt and parsing -----------------------------------------------------------------------


def test_prompt_holds_system_history_turn_and_checklist():
    history = [("第一问", "我自己的第一答"), ("第二问", "我自己的第二答")]
    prompt = render_prompt(request("[m]", history=history))
    assert "你是武汉旅游助手" in prompt
    # Earlier rounds, with the model's own answers, in order, before the current turn.
    order = [prompt.index(s) for s in ("第一问", "我自己的第一答", "第二问", "我自己的第二答")]
    assert order == sorted(order)
    assert order[-1] < prompt.index("推荐一个景点 [m]") < prompt.index("推荐黄鹤楼。")
    for line in ("1. 回答须使用中文 | 格式约束", "2. 须拒绝与旅游无关的问题 | 动作约束"):
        assert line in prompt.splitlines()
    assert '"reasoning"' in prompt and '"verdicts"' in prompt and '"是"' in prompt
    assert "（无，这是对话的第一轮）" in render_prompt(request("[m]"))


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        f"```json\n{GOOD}\n```",
        f"  ```JSON\n{GOOD}```\n",
        verdict_json({"1": True, "2": False, "3": True}),
        verdict_json({"3": "是", "1": "是", "2": "否"}),
    ],
)
def test_parse_accepts_strict_json(text):
    verdicts, raw, reasoning = parse_judgement(text, ["1", "2", "3"])
    assert verdicts == {"1": True, "2": False, "3": True}
    assert reasoning == "逐条核对" and set(raw) == {"1", "2", "3"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "好的：" + GOOD,  # prose around the JSON
        f"```\n{GOOD}\n```",  # only a ```json fence is tolerated
        GOOD[:-1],
        WRONG_IDS,  # an id missing
        verdict_json({"1": "是", "2": "否", "3": "是", "4": "是"}),  # an id too many
        verdict_json({"1": "是", "2": "部分", "3": "是"}),
        verdict_json({"1": 1, "2": 0, "3": 1}),
        verdict_json({"1": "是", "2": None, "3": "是"}),
        json.dumps({"verdicts": {"1": "是", "2": "否", "3": "是"}}),  # no reasoning
        json.dumps([GOOD]),
    ],
)
def test_parse_rejects_anything_else(text):
    with pytest.raises(ParseError):
        parse_judgement(text, ["1", "2", "3"])


def test_agreement_kappa():
    pairs = [(True, True)] * 6 + [(False, False)] * 2 + [(True, False), (False, True)]
    result = agreement(pairs)
    # po = 0.8, pe = 0.7*0.7 + 0.3*0.3 = 0.58 -> kappa = 0.22 / 0.42
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["kappa"] == round(0.22 / 0.42, 4)  # four decimals, its meaningful digits
    assert agreement([(True, True)] * 3)["kappa"] is None  # undefined, not 0 or 1


# --- the openai judge against a fake server ---------------------------------------------------


def test_openai_retries_and_reports_errors(secret):
    script = {
        "[good]": [Reply(content=GOOD)],
        "[malformed]": [Reply(content="评判：全部满足"), Reply(content=f"```json\n{GOOD}\n```")],
        "[wrong-ids]": [Reply(content=WRONG_IDS), Reply(content=WRONG_IDS), Reply(content=GOOD)],
        "[http500]": [Reply(500, body='{"error": "boom"}')] * 2 + [Reply(content=GOOD)],
        "[timeout]": [Reply(content=GOOD, delay=2.5), Reply(content=GOOD)],
        "[hopeless]": [Reply(content="不是JSON")],
        "[rejected]": [Reply(400, body='{"error": "context too long"}')],
    }
    with FakeJudgeServer(script) as server:
        judge = openai_judge(server, concurrency=4, timeout=1.5)
        markers = list(script)
        results = dict(zip(markers, judge.judge_many([request(m) for m in markers]), strict=True))

    expected_calls = {
        "[good]": 1,
        "[malformed]": 2,
        "[wrong-ids]": 3,
        "[http500]": 3,
        "[timeout]": 2,
        "[hopeless]": 10,
        "[rejected]": 1,
    }
    assert {m: server.count(m) for m in markers} == expected_calls
    for m in ("[good]", "[malformed]", "[wrong-ids]", "[http500]", "[timeout]"):
        j = results[m]
        assert j.error is None and j.verdicts == {"1": True, "2": False, "3": True}, m
        assert j.raw == {"1": "是", "2": "否", "3": "是"} and j.all_pass is False
    assert results["[good]"].attempts == 1 and results["[wrong-ids]"].attempts == 3

    hopeless = results["[hopeless]"]
    assert hopeless.verdicts == {} and hopeless.all_pass is None
    assert "10 attempts" in hopeless.error and "not JSON" in hopeless.error
    assert len(hopeless.outputs) == 10
    # The reference schedule: five greedy attempts, then five at 0.5.
    temps = [r["body"]["temperature"] for r in server.requests if r["marker"] == "[hopeless]"]
    assert temps == [0.0] * 5 + [0.5] * 5
    assert "HTTP 400" in results["[rejected]"].error
    # The key went where it belongs: the Authorization header, and the model name in the body.
    assert {r["auth"] for r in server.requests} == {f"Bearer {secret}"}
    assert {r["body"]["model"] for r in server.requests} == {"fake-judge"}
    assert {r["path"] for r in server.requests} == {"/v1/chat/completions"}


def test_openai_identity_hides_credentials_in_the_url():
    judge = make_judge("openai", model="m", base_url="https://u:pw@host:8443/v1/?api-key=abc")
    assert judge.identity == "openai|m|https://host:8443/v1/chat/completions"
    assert "pw" not in repr(judge) and "abc" not in repr(judge)


def test_openai_concurrency_is_bounded(secret):
    with FakeJudgeServer({"[slow]": [Reply(content=GOOD, delay=0.15)]}) as server:
        judge = openai_judge(server, concurrency=3)
        results = judge.judge_many([request(f"[slow] #{i}") for i in range(9)])
    assert all(j.error is None for j in results)
    assert server.count("[slow]") == 9
    # Exactly three requests were open at once at the peak: parallel, and bounded.
    assert server.max_in_flight == 3


def test_openai_unauthorised_stops_without_leaking(secret):
    script = {"[auth]": [Reply(401, body=f'{{"error": "bad key {ECHO_AUTH}"}}')]}
    with FakeJudgeServer(script) as server:
        judge = openai_judge(server)
        with pytest.raises(JudgeUnavailable) as info:
            judge.judge(request("[auth]"))
    assert server.count("[auth]") == 1  # no retries on a configuration error
    assert "401" in str(info.value) and KEY_ENV in str(info.value)
    assert secret not in str(info.value) and secret not in repr(info.value)
    # The underlying urllib error is not chained into tracebacks.
    assert info.value.__cause__ is None and info.value.__suppress_context__


def session(system_id: int, marker: str) -> dict:
    turns = [
        {"round_index": k, "user": f"第{k}个问题 {marker}", "criteria": CHECKLIST[:k]}
        for k in (1, 2, 3)
    ]
    return {"system_id": system_id, "system_prompt": "你是武汉旅游助手。", "turns": turns}


def test_openai_cache_rows_and_key_hygiene(secret, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    script = {
        # Servers can echo what they were sent; the judge must scrub the key from all of it.
        "[echo]": [
            Reply(503, body=f'{{"error": "overloaded for {ECHO_AUTH}"}}'),
            Reply(content=f"not json, by the way your header was {ECHO_AUTH}"),
        ],
    }
    sessions = [session(1, "[plain]"), session(2, "[echo]")]
    answers = {(sid, k): f"会话{sid}的第{k}个回答" for sid in (1, 2) for k in (1, 2, 3)}
    cache_path = tmp_path / "judge.sqlite"
    with FakeJudgeServer(script) as server:
        judge = openai_judge(server, cache=cache_path, max_attempts=3)
        rows = judge_sessions(judge, sessions, answers, model_name="my-model")
        first = len(server.requests)
        again = judge_sessions(openai_judge(server, cache=cache_path), sessions[:1], answers, "m")
        after_rerun = len(server.requests)
        # Failed judgements are not cached as judgements, but their raw answers are: a rerun
        # whose attempts the stored answers already used up calls nothing...
        unjudged = judge_sessions(
            openai_judge(server, cache=cache_path, max_attempts=1), sessions, answers, "m"
        )
        assert len(server.requests) == after_rerun
        assert all(r["judge_error"] and "rejudge" in r["error"] for r in unjudged[3:])
        # ... and with rejudge_errors only the unjudged turns are judged again.
        judge_sessions(
            openai_judge(server, cache=cache_path, max_attempts=1, rejudge_errors=True),
            sessions,
            answers,
            "m",
        )
        retried = len(server.requests) - after_rerun
        echoed = openai_judge(server, max_attempts=2).judge(request("[echo]"))

    assert first == 3 + 3 * 3  # three clean turns, three turns x three failing attempts
    assert after_rerun == first  # a rerun of the clean session costs nothing
    assert [r["verdicts"] for r in again] == [r["verdicts"] for r in rows[:3]]
    assert [r["reasoning"] for r in again] == [r["reasoning"] for r in rows[:3]]
    assert retried == 3

    assert [(r["system_id"], r["round_index"]) for r in rows] == [
        (s, k) for s in (1, 2) for k in (1, 2, 3)
    ]
    for row in rows:
        assert set(row) == LABEL_KEYS | {"judge_error", "error", "judge_failure"}
        assert row["model"] == "my-model" and row["judge"] == "fake-judge"
    clean, failed = rows[:3], rows[3:]
    assert all(r["error"] is None and r["all_pass"] is True for r in clean)
    assert [len(r["verdicts"]) for r in clean] == [1, 2, 3]
    assert all(r["judge_error"] and r["verdicts"] == {} and r["all_pass"] is None for r in failed)

    # History: round 3's prompt holds the model's own answers to rounds 1 and 2.
    round3 = next(r["prompt"] for r in server.requests if "第3个问题 [plain]" in r["prompt"])
    assert "会话1的第1个回答" in round3 and "会话1的第2个回答" in round3

    cache = JudgeCache(cache_path)
    assert len(cache) == 3
    cache.close()
    blobs = [cache_path.read_bytes()] + [
        p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("judge.sqlite-")
    ]
    texts = [json.dumps(rows, ensure_ascii=False), caplog.text, repr(judge), repr(echoed)]
    assert all(secret.encode() not in b for b in blobs)
    assert all(secret not in t for t in texts)
    # What the server echoed was scrubbed, in the logs and in the kept raw outputs.
    assert "Bearer ***" in caplog.text and "Bearer ***" in echoed.outputs[-1]


def test_stored_raw_answers_are_read_again_by_a_changed_parser(secret, tmp_path):
    """A parser fix re-reads the judge's old answers from the cache: no call to the judge."""

    def old_parser(text, ids):  # a parser with a bug: it reads nothing
        raise ParseError("old parser")

    official = judge_prompt("official")
    buggy = JudgePrompt("official", official.render, old_parser)
    cache_path = tmp_path / "judge.sqlite"
    with FakeJudgeServer() as server:  # answers 是 for every criterion, in official format
        old = openai_judge(server, cache=cache_path, max_attempts=2, prompt=buggy)
        first = old.judge(request("[m]"))
        calls = len(server.requests)
        new = openai_judge(server, cache=cache_path, max_attempts=2, prompt="official")
        fixed = new.judge(request("[m]"))
    assert first.error is not None and calls == 2
    assert len(server.requests) == calls  # read again from the stored answers
    assert (
        fixed.error is None and fixed.cached and fixed.verdicts == {"1": True, "2": True, "3": True}
    )
    cache = JudgeCache(cache_path)
    key = prompt_key(official.messages(request("[m]")))
    assert len(cache.get_answers(new.identity, key)) == 2 and len(cache) == 1


def test_answers_must_not_skip_rounds():
    judge = make_judge("replay", labels="/dev/null")
    with pytest.raises(ValueError, match="earlier round"):
        judge_sessions(judge, [session(1, "[x]")], {(1, 2): "只有第二轮"}, "m")


# --- replay and calibration on the real labels ------------------------------------------------


def test_replay_calibrates_perfectly_against_its_own_labels(sysbench):
    data, labels = sysbench
    result = calibrate(make_judge("replay", labels=labels), labels, data, limit=50)
    assert result["turns"] == 50 and result["judge_errors"] == 0
    assert result["accuracy"] == 1.0 and result["kappa"] == 1.0
    assert result["criteria"] > 50 and result["turn_all_pass_agreement"] == 1.0
    assert all(t["accuracy"] == 1.0 for t in result["by_type"].values())


def test_max_turns_judges_the_first_turns_of_the_sample_in_file_order(sysbench, tmp_path):
    """What a stopped run's cache holds: a prefix of the sample, in the order it judges."""
    data, labels = sysbench
    judge = make_judge("replay", labels=labels)
    whole, first = tmp_path / "whole.jsonl", tmp_path / "first.jsonl"
    result = calibrate(judge, labels, data, rows_path=whole, sample=20, seed=0)
    part = calibrate(judge, labels, data, rows_path=first, sample=20, seed=0, max_turns=5)
    assert (result["turns"], part["turns"], part["max_turns"]) == (20, 5, 5)
    assert "max_turns" not in result
    assert first.read_text().splitlines() == whole.read_text().splitlines()[:5]
    with pytest.raises(ValueError, match="at least 1"):
        calibrate(judge, labels, data, sample=20, max_turns=0)


def test_replay_rows_reproduce_the_labels(sysbench):
    data, labels = sysbench
    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines()[:10]]
    sessions = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()[:2]]
    answers = {(r["system_id"], r["round_index"]): r["answer"] for r in rows}
    judged = judge_sessions(make_judge("replay", labels=labels), sessions, answers, "gpt4o")
    assert [{k: r[k] for k in LABEL_KEYS} for r in judged] == rows
    # A different answer is not silently given the stored verdicts.
    answers[(1, 1)] = "另一个回答"
    judged = judge_sessions(make_judge("replay", labels=labels), sessions[:1], answers, "gpt4o")
    assert judged[0]["judge_error"] and "differs" in judged[0]["error"]


def test_calibrate_cli_and_openai_judge(sysbench, secret, tmp_path, capsys):
    data, labels = sysbench
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["judge-calibrate", "--judge", "replay", "--labels", str(labels), "--limit", "20"]
    )
    args.func(args)
    printed = json.loads(capsys.readouterr().out)
    assert printed["accuracy"] == 1.0 and printed["turns"] == 20

    # A judge that says 是 to everything agrees exactly where GPT-4o said 是.
    gold = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines()[:10]]
    decided = [v for r in gold for v in r["verdicts"].values() if v is not None]
    rows_path = tmp_path / "rows.jsonl"
    with FakeJudgeServer() as server:
        judge = openai_judge(server, cache=tmp_path / "c.sqlite")
        result = calibrate(judge, labels, data, limit=10, rows_path=rows_path)
    assert len(server.requests) == 10 and result["judge_errors"] == 0
    assert result["accuracy"] == pytest.approx(sum(decided) / len(decided))
    written = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines()]
    assert [r["answer"] for r in written] == [r["answer"] for r in gold]
    assert secret not in rows_path.read_text(encoding="utf-8")


def test_calibrate_cli_reports_each_judge_prompt(sysbench, secret, tmp_path, capsys):
    """The official and the project's prompt, each against GPT-4o's verdicts: the fake judge
    answers 是 to every criterion, in the format of the prompt it was sent."""
    data, labels = sysbench
    gold = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines()[:6]]
    decided = [v for r in gold for v in r["verdicts"].values() if v is not None]
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    with FakeJudgeServer() as server:
        argv = ["judge-calibrate", "--judge", "openai", "--base-url", server.url, "--limit", "6"]
        argv += ["--labels", str(labels), "--api-key-env", KEY_ENV, "--cache", "none"]
        args = parser.parse_args([*argv, "--rows", str(tmp_path / "rows")])
        args.func(args)
    printed = json.loads(capsys.readouterr().out)["by_prompt"]
    assert list(printed) == ["official", "rpo_bench"]
    for result in printed.values():
        assert (result["turns"], result["judge_errors"]) == (6, 0)
        assert result["accuracy"] == pytest.approx(sum(decided) / len(decided))
    prompts = [r["prompt"] for r in server.requests]
    assert sum("<评判细则>" in p for p in prompts) == sum("【评判细则】" in p for p in prompts) == 6
    assert (tmp_path / "rows.official.jsonl").exists() and (
        tmp_path / "rows.rpo_bench.jsonl"
    ).exists()


# --- the local hf judge -----------------------------------------------------------------------


@pytest.fixture
def one_torch_thread():
    """On a shared, busy CPU, OpenMP threads spinning against other processes make decoding
    ~15x slower than one thread; one thread keeps this test fast everywhere."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_hf_judge_on_the_embedded_model(prepared_model_dir, one_torch_thread, caplog):
    """Greedy SmolLM2-135M does not write JSON for this prompt (it echoes the prompt's opening
    line): every turn is a judge error, counted as such, and nothing is scored."""
    judge = make_judge(
        "hf", model=str(prepared_model_dir), max_new_tokens=128, max_attempts=1, prompt="rpo_bench"
    )
    sessions = [
        {
            "system_id": 7,
            "system_prompt": "你是武汉旅游助手，只回答与武汉旅游有关的问题。",
            "turns": [
                {"round_index": 1, "user": "推荐一个景点", "criteria": CHECKLIST[:1]},
                {"round_index": 2, "user": "再推荐一个", "criteria": CHECKLIST[:2]},
            ],
        }
    ]
    answers = {(7, 1): "推荐黄鹤楼。", (7, 2): "推荐东湖。"}
    with caplog.at_level(logging.WARNING, logger="rpo_bench.judge"):
        rows = judge_sessions(judge, sessions, answers, "smollm2-135m")
    error = (
        "judge failed after 1 attempts; last: unparseable judgement: "
        "not JSON (Expecting value at char 0)"
    )
    assert rows == [
        {
            "model": "smollm2-135m",
            "system_id": 7,
            "round_index": k,
            "answer": answers[(7, k)],
            "judge": str(prepared_model_dir),
            "reasoning": "",
            "verdicts": {},
            "verdicts_raw": {},
            "all_pass": None,
            "judge_error": True,
            "error": error,
            "judge_failure": "unparseable",
        }
        for k in (1, 2)
    ]
    assert "2 of 2 turns could not be judged (judge errors: 2 unparseable)" in caplog.text


@pytest.mark.parametrize("judged", ["never_parses", "nothing_listening"])
def test_calibrate_cli_with_nothing_judged_exits_nonzero(sysbench, secret, tmp_path, capsys,
                                                         judged):  # fmt: skip
    """No agreement figure from a judge that judged nothing: an endpoint that cannot work
    stops before the first turn (exit 2), one whose answers never parse after them (1)."""
    from test_fail_fast import closed_port

    _, labels = sysbench
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    with FakeJudgeServer(respond=lambda prompt: Reply(content="no verdicts here")) as server:
        url = server.url if judged == "never_parses" else closed_port()
        argv = ["judge-calibrate", "--judge", "openai", "--base-url", url, "--limit", "3",
                "--labels", str(labels), "--api-key-env", KEY_ENV, "--cache", "none"]  # fmt: skip
        args = parser.parse_args(argv)
        with pytest.raises(SystemExit if judged == "never_parses" else ConnectionError) as err:
            args.func(args)
    if judged == "never_parses":
        assert err.value.code == 1 and len(server.requests) == 3 * MAX_ATTEMPTS
        assert "could judge none of the 3 turns" in capsys.readouterr().err
    else:  # the CLI turns this ConnectionError into exit 2 with its message
        assert "nothing is listening there (connection refused)" in str(err.value)
