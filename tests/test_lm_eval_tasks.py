"""Every task of tasks/ through lm_eval.simple_evaluate on the embedded model (one run, 2 docs
each, 16 new tokens): the reported metrics equal the logged replies scored again; the
multi-turn tasks' final-turn prompts hold the model's OWN earlier replies; SysBench's scores
follow from the judge's verdicts (an OpenAI-compatible fake judge on 127.0.0.1) by hand; no
chat template -> a clear error."""

from __future__ import annotations

import json

import lm_eval
import pytest
import rescore
import torch
from fake_judge_server import FakeJudgeServer, Reply, official_json
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from rpo_bench.evaluate import multi_if
from rpo_bench.evaluate.sysbench import load_sessions
from rpo_bench.evaluate.sysbench.task import session_doc
from rpo_bench.judge.prompt import checklist_lines
from rpo_bench.paths import sysbench_file

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "multi_if_fixture.csv"
TASKS = ["ifeval_local", "ifbench", "multi_if_english", "sysbench_multiturn"]
LIMIT, MAX_TOKS = 2, 16
# SysBench's two shortest sessions (system message + user turns; system_id 289 and 461):
# the embedded model reads Chinese at ~2 tokens a character, and a slow CPU pays for each.
SYSBENCH_DOCS = [288, 460]
KEY_ENV = "RPO_TEST_SYSBENCH_JUDGE_KEY"
ASSISTANT = "<|im_start|>assistant\n"


def prompt_of(sample: dict) -> str:
    args = sample["arguments"]
    return args["gen_args_0"]["arg_0"] if isinstance(args, dict) else args[0][0]


def unique_checklist_line(docs: list[dict], session: int) -> tuple[int, str]:
    """(round, line) of a checklist line of `session` found in no other judged turn's checklist:
    the fake judge recognises that one turn by it (history holds no checklists)."""
    lines = [
        (i, t["round_index"], line)
        for i, d in enumerate(docs)
        for t in d["turns"]
        for line in checklist_lines(t["criteria"]).splitlines()
    ]
    for i, rnd, line in lines:
        if i == session and sum(line == other for _, _, other in lines) == 1:
            return rnd, line
    raise AssertionError(f"session {session} has no unique checklist line")


@pytest.fixture(scope="module")
def run(prepared_model_dir):
    try:
        path = sysbench_file()
    except FileNotFoundError as err:
        pytest.skip(f"SysBench data not available (set RPO_BENCH_DATA): {err}")
    sessions = load_sessions(path)
    docs = [session_doc(sessions[i]) for i in SYSBENCH_DOCS]
    fail_round, fail_line = unique_checklist_line(docs, 0)
    error_round, error_line = unique_checklist_line(docs, 1)
    fail_turn = docs[0]["turns"][fail_round - 1]
    fail_id = fail_line.split(".")[0]
    verdicts = {str(c["criteria_id"]): "是" for c in fail_turn["criteria"]} | {fail_id: "否"}
    script = {
        fail_line: [Reply(content=official_json(verdicts))],
        error_line: [Reply(400, body='{"error": "rejected"}')],  # a judge error, not a fail
    }
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a loaded 2-core machine decodes far slower with more
    try:
        lm = HFLM(pretrained=str(prepared_model_dir), dtype="float32", device="cpu", batch_size=1)
        with FakeJudgeServer(script) as server:
            metadata = {
                "data_file": str(FIXTURE),
                # greedy, so a turn played again gives the same reply (official samples)
                "decoding": "greedy",
                "generation_cache": None,  # every turn generated here, none from a cache
                "judge": "openai",
                "judge_args": {
                    "model": "fake-judge",
                    "base_url": server.url,
                    "api_key_env": KEY_ENV,
                    "cache": None,
                    "backoff": 0.01,
                },
            }
            manager = TaskManager(include_path=str(REPO / "tasks"), metadata=metadata)
            out = lm_eval.simple_evaluate(
                model=lm,
                tasks=TASKS,
                task_manager=manager,
                samples={t: SYSBENCH_DOCS if t == "sysbench_multiturn" else [0, 1] for t in TASKS},
                gen_kwargs={"max_gen_toks": MAX_TOKS},
                apply_chat_template=True,
                log_samples=True,
            )
        yield {
            "out": out,
            "lm": lm,
            "server": server,
            "docs": docs,
            "fail": (fail_round, fail_id),
            "error_round": error_round,
            "manager": manager,
        }
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("task", ["ifeval_local", "ifbench"])
def test_single_turn_tasks(run, task):
    # The reported aggregates are exactly those of the logged replies, scored again.
    metrics = run["out"]["results"][task]
    samples = run["out"]["samples"][task]
    assert [s["doc_id"] for s in samples] == [0, 1] and len(samples) == LIMIT
    expected = rescore.rescore_samples(task, samples)
    rescore.assert_metrics_equal(metrics, expected)


@pytest.mark.parametrize("task", ["ifeval_local", "ifbench"])
def test_report_numbers_equal_lm_eval_numbers(run, task):
    """The ablation's evaluation stage, given lm-eval's replies, reports lm-eval's numbers
    exactly: both score with the same document scorer and the same aggregation."""
    from rpo_bench.evaluate import metrics as evaluate
    from rpo_bench.evaluate.tasks import TASKS

    benchmark = TASKS[task]
    rows = [
        benchmark.score_doc(s["doc"], s["filtered_resps"][0]) for s in run["out"]["samples"][task]
    ]
    report = evaluate.aggregate(rows)
    printed = run["out"]["results"][task]
    assert {m: report[m] for m in evaluate.METRICS} == {
        m: printed[f"{m},none"] for m in evaluate.METRICS
    }


def test_multi_if_final_prompt_holds_the_models_own_turn_1_reply(run):
    metrics = run["out"]["results"]["multi_if_english"]
    samples = run["out"]["samples"]["multi_if_english"]
    # Every turn's reported metrics are exactly those of the replies played, scored again.
    expected = rescore.rescore_multi_if(samples, run["lm"].apply_chat_template)
    rescore.assert_metrics_equal(metrics, expected)
    for sample in samples:
        conv = multi_if.parse_row(sample["doc"], "fixture", "doc")
        prompt = prompt_of(sample)
        assert prompt.count(ASSISTANT) == 3  # two earlier replies + the open turn
        # Greedy decoding is deterministic: turn 1 played again gives the reply in the history.
        lm = run["lm"]
        first = lm.apply_chat_template([{"role": "user", "content": conv.turns[0].prompt}])
        gen = {"until": [], "do_sample": False, "max_gen_toks": MAX_TOKS}
        reply = lm.generate_until(
            [Instance("generate_until", sample["doc"], (first, gen), 0)], disable_tqdm=True
        )[0]
        assert reply.strip() and reply.strip() in prompt.split(ASSISTANT)[1]


def test_sysbench_turn_5_prompt_holds_the_models_own_turn_1_to_4_replies(run):
    samples = run["out"]["samples"]["sysbench_multiturn"]
    assert [s["doc"]["system_id"] for s in samples] == [d["system_id"] for d in run["docs"]]
    for sample in samples:
        labels = sample["csr"]["labels"]
        answers = [row["answer"] for row in labels]
        assert [row["round_index"] for row in labels] == [1, 2, 3, 4, 5]
        assert answers[4] == sample["resps"][0][0]  # turn 5 is the evaluator's own request
        prompt = prompt_of(sample)
        assert prompt.count(ASSISTANT) == 5 and sample["doc"]["system_prompt"] in prompt
        blocks = prompt.split(ASSISTANT)[1:5]
        for answer, block in zip(answers[:4], blocks, strict=True):
            assert answer.strip() and block.startswith(answer.strip()), (answer, block[:80])
        # The judge saw the same history: round 5's judge prompt holds replies 1..4.
        user5 = sample["doc"]["turns"][4]["user"]
        current = f"## 当前待评估的对话轮次\n<role:>\nuser\n</role>\n<content>\n{user5}\n"
        judged = [r["prompt"] for r in run["server"].requests if current in r["prompt"]]
        assert len(judged) == 1 and all(a in judged[0] for a in answers)


def test_sysbench_scores_follow_from_the_verdicts(run):
    metrics = run["out"]["results"]["sysbench_multiturn"]
    docs, (fail_round, _) = run["docs"], run["fail"]
    # Session 1: one criterion of round `fail_round` judged 否, all else 是.
    # Session 2: round `error_round` unjudged (HTTP 400): SysBench's rule leaves it unscored.
    n_first = sum(len(t["criteria"]) for t in docs[0]["turns"])
    assert metrics["csr,none"] == pytest.approx(100 * (n_first - 1) / n_first)
    assert metrics["isr,none"] == pytest.approx(100 * 4 / 5)
    assert metrics["ssr,none"] == pytest.approx(100 * (fail_round - 1) / 5)
    assert metrics[f"round_{fail_round}_pass,none"] == 0.0
    assert metrics["judge_errors,none"] == 1 and metrics["unjudged_sessions,none"] == 1
    assert len(run["server"].requests) == 10  # 5 turns x 2 sessions, the 400 not retried
    assert run["out"]["configs"]["sysbench_multiturn"]["metadata"]["decoding"] == "greedy"


def test_multi_turn_task_without_chat_template_fails_clearly(run):
    with pytest.raises(ValueError, match="--apply_chat_template"):
        lm_eval.simple_evaluate(
            model=run["lm"],
            tasks=["sysbench_multiturn"],
            task_manager=run["manager"],
            limit=1,
            apply_chat_template=False,
        )


def test_multi_turn_document_scores(run):
    """The report's paired unit for multi-turn tasks, from samples as the harness logs them:
    Multi-IF one score per conversation turn, SysBench one CSR per session."""
    from rpo_bench.evaluate.multi_if import task as multi_if_task
    from rpo_bench.evaluate.sysbench import task as sysbench_task

    def logged(sample: dict) -> dict:
        return json.loads(json.dumps(sample, default=str))

    for sample in run["out"]["samples"]["multi_if_english"]:
        conv = multi_if.parse_row(sample["doc"], "fixture", "doc")
        expected = []
        for k, _ in conv.present():
            strict = sample[f"turn_{k}_inst_level_strict_acc"]
            loose = sample[f"turn_{k}_inst_level_loose_acc"]
            parts = (all(strict), sum(strict) / len(strict), all(loose), sum(loose) / len(loose))
            expected.append(sum(parts) / 4)
        assert multi_if_task.document_scores(logged(sample)) == pytest.approx(expected, abs=1e-12)
    docs = run["docs"]
    first, second = (logged(s) for s in run["out"]["samples"]["sysbench_multiturn"])
    n_first = sum(len(t["criteria"]) for t in docs[0]["turns"])
    # session 1: one criterion judged 否; session 2: one round unjudged, so no score
    assert sysbench_task.document_scores(first) == [pytest.approx((n_first - 1) / n_first)]
    assert sysbench_task.document_scores(second) == [None]
