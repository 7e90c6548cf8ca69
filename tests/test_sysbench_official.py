"""SysBench's official judge prompt and answer format: equal to SysBench's own code.

The reference is SysBench's `utils.get_eval_pattern` at the pinned commit, read from
$RPO_BENCH_DATA/sysbench/official (never committed). The official messages are built as
SysBench's judging loop builds them (`official_prompts` of
benchmarks/sysbench_official_prompt.py): the session's `messages` (system and user turns)
with the model's replies after each user turn, and the criteria from `prompt_infos`.
"""

from __future__ import annotations

import hashlib

import pytest
from fake_judge_server import FakeJudgeServer, Reply, official_json

from rpo_bench.evaluate.sysbench import judge_prompts
from rpo_bench.evaluate.sysbench.data import from_upstream
from rpo_bench.evaluate.sysbench.judging import judge_sessions
from rpo_bench.jsonl import read_jsonl
from rpo_bench.judge import ParseError, make_judge
from rpo_bench.judge.official import SHA256, official_file, parse_judgement
from rpo_bench.paths import data_dir

from conftest import REPO, load_file

official_prompts = load_file(
    "sysbench_official_prompt", REPO / "benchmarks" / "sysbench_official_prompt.py"
).official_prompts


@pytest.fixture(scope="module")
def official():
    """SysBench's utils.py imported on its own, from the shared data folder."""
    root = data_dir()
    path = root / "sysbench" / "official" / "utils.py" if root else None
    if path is None or not path.exists():
        pytest.skip("SysBench's official code is not available (set RPO_BENCH_DATA)")
    return load_file("sysbench_utils_for_test", path)


@pytest.fixture(scope="module")
def rows():
    root = data_dir()
    path = root / "sysbench" / "sysbench_eval.jsonl" if root else None
    if path is None or not path.exists():
        pytest.skip("SysBench data not available (set RPO_BENCH_DATA)")
    return list(read_jsonl(path))


def replies_for(row) -> list[str]:
    # Distinct per turn, with the characters a reply may carry (newlines, braces, quotes).
    return [f'第{k}轮的回答 {{id}} "引号"\n- 列表 {row["system_id"]}' for k in range(1, 6)]


def test_judge_prompts_equal_sysbench_get_eval_pattern_on_every_session(official, rows):
    equal = sum(
        judge_prompts(row, replies_for(row)) == official_prompts(official, row, replies_for(row))
        for row in rows
    )
    assert (equal, len(rows)) == (500, 500)


def test_the_project_prompt_stays_selectable(rows):
    prompts = judge_prompts(rows[0], replies_for(rows[0]), prompt="rpo_bench")
    assert len(prompts) == 5 and all("【评判细则】" in p for p in prompts)


def test_official_file_is_checked_against_its_sha256(tmp_path, monkeypatch):
    (tmp_path / "sysbench" / "official").mkdir(parents=True)
    (tmp_path / "sysbench" / "official" / "utils.py").write_text("def get_eval_pattern(): ...\n")
    monkeypatch.setenv("RPO_BENCH_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="sha256"):
        official_file("utils.py")


def test_the_shared_copy_is_the_pinned_one(official):
    path = official_file("utils.py")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256["utils.py"]


IDS = ["1", "2", "3"]


@pytest.mark.parametrize(
    ("text", "verdicts"),
    [
        # GPT-4o's usual answer: a Python dict literal with integer keys in a ```json fence
        ('```json\n{"评判理由": "r", "评判结果": {1: "是", 2: "否", 3: "是"}}\n```', [1, 0, 1]),
        # JSON with string keys, surrounding whitespace: the official loop strips first
        (
            '  ```json\n{"评判理由": "r", "评判结果": {"3": "是", "1": "否", "2": "是"}}\n```\n',
            [0, 1, 1],
        ),
        # a value that is neither 是 nor 否: accepted, as the official loop accepts it
        (
            '```json\n{"评判理由": "r", "评判结果": {1: "是", 2: "部分", 3: "否"}}\n```',
            [1, None, 0],
        ),
    ],
)
def test_official_parse_accepts_what_sysbench_accepts(text, verdicts):
    got, raw, reasoning = parse_judgement(text, IDS)
    assert [got[i] for i in IDS] == [None if v is None else bool(v) for v in verdicts]
    assert reasoning == "r" and set(raw) == set(IDS)


@pytest.mark.parametrize(
    "text",
    [
        # no fence: the official slice [7:-3] breaks it
        '{"评判理由": "r", "评判结果": {1: "是", 2: "否", 3: "是"}}',
        '```json\n{"评判理由": "r", "评判结果": {1: "是", 2: "否"}}\n```',  # an id missing
        '```json\n{"评判理由": "r", "评判结果": {1: "是", 2: "否", 3: "是", 4: "是"}}\n```',
        '```json\n{"评判结果": {1: "是", 2: "否", 3: "是"}}\n```',  # no 评判理由
        '```json\n{"评判理由": "r", "评判结果": [1, 2, 3]}\n```',  # 评判结果 not a dict
        '```json\n{"评判理由": "r", "评判结果": {"a": "是", 2: "否", 3: "是"}}\n```',
        # code, not a literal: the official loop would run it; here it is a parse error
        '```json\n__import__("os").system("touch /tmp/pwned")\n```',
    ],
)
def test_official_parse_refuses_what_sysbench_retries(text):
    with pytest.raises(ParseError):
        parse_judgement(text, IDS)


def checklist_block(prompt: str) -> str:
    return prompt.split("<评判细则>", 1)[1].split("</评判细则>", 1)[0]


def test_openai_judge_sends_the_official_prompt_and_parses_its_answer(official, rows):
    # A session whose first turn's checklist appears in no other of its turns' prompts.
    row, expected = next(
        (r, p)
        for r in rows
        for p in [official_prompts(official, r, replies_for(r))]
        if sum(checklist_block(p[0]) in q for q in p) == 1
    )
    first = row["turns"][0]["criteria"]
    fail = {str(c["criteria_id"]): "是" for c in first} | {str(first[0]["criteria_id"]): "否"}
    marker = checklist_block(expected[0])
    script = {marker: [Reply(content="评判：都满足"), Reply(content=official_json(fail))]}
    answers = {(row["system_id"], k): r for k, r in enumerate(replies_for(row), 1)}
    with FakeJudgeServer(script) as server:
        judge = make_judge("openai", model="fake", base_url=server.url, concurrency=1)
        labels = judge_sessions(judge, [row], answers, "m")
    sent = [r["body"]["messages"] for r in server.requests]
    # turn 1 twice (its first answer does not parse, the retry does), then turns 2..5
    assert sent == [[{"role": "user", "content": p}] for p in [expected[0], *expected]]
    assert [r["body"]["temperature"] for r in server.requests[:2]] == [0.0, 0.0]
    assert [lab["all_pass"] for lab in labels] == [False, True, True, True, True]
    assert labels[0]["verdicts"] == {k: v == "是" for k, v in fail.items()}


# --- the ground-truth-history variant ---------------------------------------------------------


def upstream_session() -> dict:
    """A made-up session in SysBench's upstream schema: messages with reference replies."""
    users = [f"问题{k}" for k in range(1, 6)]
    messages = [{"role": "system", "content": "你是一个只谈天气的助手。"}]
    for k, user in enumerate(users, 1):
        messages += [
            {"role": "user", "content": user},
            {"role": "assistant", "content": f"参考{k}"},
        ]
    infos = {
        user: {
            "alignment": "align",
            "criteria": {
                "1": {"criteria_id": 1, "criteria_content": "只谈天气", "criteria_type": "动作约束"}
            },
        }
        for user in users
    }
    row = {
        "system_id": 9,
        "领域": "天气",
        "场景": None,
        "rounds_related": True,
        "messages": messages,
    }
    return from_upstream([row | {"prompt_infos": infos}], "upstream.json")[0]


def test_reference_history_shows_the_datas_replies_as_sysbench_with_gt_does(official):
    row = upstream_session()
    replies = [f"模型{k}" for k in range(1, 6)]
    prompts = judge_prompts(row, replies, history="reference")
    # eval_system_bench_with_gt.py: the reference messages up to the turn, then the answer
    expected = []
    for k in range(5):
        messages = row["messages"][: 2 * k + 2] + [{"role": "assistant", "content": replies[k]}]
        criteria = row["prompt_infos"][messages[-2]["content"]]["criteria"]
        expected.append(official.get_eval_pattern(messages=messages, criteria=criteria))
    assert prompts == expected
    assert "参考1" in prompts[1] and "模型1" not in prompts[1]
    own = judge_prompts(row, replies)  # the default: the model's own replies
    assert "模型1" in own[1] and "参考1" not in own[1]


def test_reference_history_on_the_local_copy_says_what_is_missing(rows):
    if all(t.get("reference") is None for r in rows for t in r["turns"]):
        with pytest.raises(ValueError, match="history 'reference' needs the data's reference"):
            judge_prompts(rows[0], replies_for(rows[0]), history="reference")
        pytest.skip(
            "the local sysbench_eval.jsonl holds no reference replies (rebuilt from SysBench's "
            "xlsx, whose reference column is shifted); SysBench's own JSON holds them"
        )
    assert len(judge_prompts(rows[0], replies_for(rows[0]), history="reference")) == 5
