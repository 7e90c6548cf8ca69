"""sysbench_multiturn without a model: where the data comes from (local, pinned download, a
clear error offline), which judge the metadata picks, and that the task's aggregation equals
`sysbench-score` on the released labels. The lm-eval run itself: test_lm_eval_tasks.py."""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from collections import defaultdict
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rpo_bench.evaluate import sysbench
from rpo_bench.evaluate.sysbench import data as sysbench_data
from rpo_bench.evaluate.sysbench import task as sysbench_task
from rpo_bench.judge import OpenAIJudge, ReplayJudge
from rpo_bench.paths import sysbench_file


@pytest.fixture
def local():
    try:
        return sysbench_file("sysbench_eval.jsonl"), sysbench_file("judge_labels/gpt4o.jsonl")
    except FileNotFoundError as err:
        pytest.skip(f"SysBench data not available (set RPO_BENCH_DATA): {err}")


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No local data, an empty cache."""
    monkeypatch.setenv("RPO_BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RPO_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def upstream_row(row: dict) -> dict:
    """A local row back in the upstream schema: Chinese keys, ground-truth replies, no turns."""
    messages = [row["messages"][0]]
    for m in row["messages"][1:]:
        messages += [m, {"role": "assistant", "content": "参考回答"}]
    return {
        "system_id": row["system_id"],
        "领域": row["domain"],
        "场景": row["scene"] or "",
        "rounds_related": row["rounds_related"],
        "system_prompt": row["system_prompt"],
        "messages": messages,
        "prompt_infos": row["prompt_infos"],
    }


def test_offline_without_data_names_what_is_missing(nowhere, monkeypatch):
    monkeypatch.setattr(sysbench_data, "UPSTREAM_URL", "http://127.0.0.1:9/none.json")
    with pytest.raises(FileNotFoundError) as info:
        sysbench_task.load_docs()
    message = str(info.value)
    for part in ("sysbench_eval.jsonl", "$RPO_BENCH_DATA/sysbench/", "sysbench_file", "licence"):
        assert part in message
    with pytest.raises(FileNotFoundError, match="metadata sysbench_file"):
        sysbench_task.load_docs(sysbench_file=str(nowhere / "absent.jsonl"))


def test_pinned_download_is_converted_and_cached(local, nowhere, monkeypatch):
    data, _ = local
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()[:3]]
    served = nowhere / "served"
    served.mkdir()
    (served / "datas.json").write_text(json.dumps([upstream_row(r) for r in rows]), "utf-8")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/datas.json"
    monkeypatch.setattr(sysbench_data, "UPSTREAM_URL", url)
    try:
        path = sysbench_task.data_file()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert path.parent == nowhere / "cache" / "sysbench"
    downloaded = sysbench.load_sessions(path)
    # The upstream ground-truth replies are kept, for the reference-history variant.
    assert {t.reference for s in downloaded for t in s.turns} == {"参考回答"}
    without = [
        dataclasses.replace(s, turns=tuple(dataclasses.replace(t, reference=None) for t in s.turns))
        for s in downloaded
    ]
    assert without == sysbench.load_sessions(data)[:3]
    assert sysbench_task.data_file() == path  # cached: the server is gone
    docs = sysbench_task.load_docs()["test"]
    assert [d["system_id"] for d in docs] == [r["system_id"] for r in rows]
    assert docs[0]["turns"][0]["criteria"][0]["criteria_id"] == 1


def test_metadata_picks_the_judge(monkeypatch, tmp_path, local):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("RPO_BENCH_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match=r"\$OPENAI_API_KEY"):
        sysbench_task.make_sysbench_judge({})  # fails before any generation
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    judge = sysbench_task.make_sysbench_judge({"version": 1.0})
    assert isinstance(judge, OpenAIJudge) and judge.name == "gpt-4o-2024-05-13"
    assert judge.cache.path == tmp_path / "judge" / "judgements.sqlite"
    vllm = sysbench_task.make_sysbench_judge(
        {"judge_args": {"base_url": "http://127.0.0.1:8000/v1", "model": "m", "cache": None}}
    )
    assert vllm.identity == "openai|m|http://127.0.0.1:8000/v1/chat/completions"
    assert vllm.cache is None
    _, labels = local
    replay = sysbench_task.make_sysbench_judge(
        {"judge": "replay", "judge_args": {"labels": labels}}
    )
    assert isinstance(replay, ReplayJudge)
    with pytest.raises(ValueError, match="unknown judge kind"):
        sysbench_task.make_sysbench_judge({"judge": "oracle"})


def test_aggregation_equals_sysbench_score_on_the_released_labels(local):
    data, labels = local
    sessions = sysbench.load_sessions(data)
    rows = defaultdict(list)
    for line in labels.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows[row["system_id"]].append(row)
    items = [
        {"session": sysbench_task.session_doc(s), "labels": rows[s.system_id]} for s in sessions
    ]
    # The paper's GPT-4o numbers, in percent, as sysbench-score gives them.
    assert round(sysbench_task.csr(items), 1) == 87.1
    assert round(sysbench_task.isr(items), 1) == 76.4
    assert round(sysbench_task.ssr(items), 1) == 54.4
    # Two turns the judge could not judge, as rpo_bench.judge writes them (all_pass null).
    for row in items[0]["labels"][3:5]:
        row.update(verdicts={}, verdicts_raw={}, all_pass=None, judge_error=True)
    expected = sysbench.score(
        [sysbench.label_from_row(r, "t") for i in items for r in i["labels"]],
        sessions,
        ndigits=None,
    )
    # SysBench's rule: the session with unjudged turns is left out, and named
    assert (expected["judge_errors"], expected["n_sessions"], expected["n_turns"]) == (2, 499, 2495)
    assert expected["unjudged_sessions"] == [items[0]["session"]["system_id"]]
    assert sysbench_task.csr(items) == pytest.approx(expected["csr"])
    assert sysbench_task.isr(items) == pytest.approx(expected["isr"])
    assert sysbench_task.ssr(items) == pytest.approx(expected["ssr"])
    per_doc = [sum(r.get("judge_error", False) for r in i["labels"]) for i in items]
    assert sysbench_task.judge_errors(per_doc) == 2
