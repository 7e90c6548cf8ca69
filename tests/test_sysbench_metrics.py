"""SysBench metrics: hand-computed synthetic cases, input errors, and replay of the released labels.

SysBench has no licence, so nothing derived from it lives in the repo: the replay tests read it
from $RPO_BENCH_DATA and skip when it is absent. The synthetic sessions below are made up.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path

import pytest

from rpo_bench.evaluate import sysbench
from rpo_bench.evaluate.sysbench import load_labels, load_sessions, score
from rpo_bench.evaluate.sysbench.data import PUBLISHED

# Paper (SysBench, model's own history), CSR / ISR / SSR, as docs/benchmarks.md lists them
PAPER = PUBLISHED
REPO = Path(__file__).resolve().parent.parent
ALL_MODELS = {
    "claude35_opus", "deepseek", "ernie4", "glm4", "glm_9b_client", "gpt35", "gpt4_turbo_0409",
    "gpt4o", "llama3_70b", "llama3_8b", "moonshot", "qwen2_72b", "qwen2_7b", "yi_large",
}  # fmt: skip

# ---------------------------------------------------------------- synthetic data
A, C, B, R, F, S = "动作约束", "内容约束", "背景约束", "角色约束", "格式约束", "风格约束"
T, X, N = True, False, None  # verdicts: satisfied, violated, judge said "not applicable"

# system_id -> (rounds_related, [(alignment, [(type, verdict), ...]) per round])
SYNTHETIC = {
    # passes rounds 1-3 (round 3 has a null, which does not fail it), fails round 4
    1: (True, [
        ("align", [(A, T), (F, T)]),
        ("align", [(C, T)]),
        ("misalign", [(R, T), (S, N), (C, T)]),
        ("align", [(C, X), (F, T)]),
        ("align", [(B, T)]),
    ]),
    # fails round 1, then passes everything
    2: (True, [("misalign", [(A, X)])] + [("align", [(C, T)])] * 4),
    # parallel session, all pass
    3: (False, [("align", [(C, T), (S, T)])] * 5),
}  # fmt: skip


def synthetic_files(tmp_path: Path, label_edits=None) -> tuple[Path, Path]:
    """Write the synthetic sessions and labels as JSONL; `label_edits(rows)` may alter labels."""
    sessions, labels = [], []
    for sid, (related, rounds) in SYNTHETIC.items():
        turns = []
        for r, (alignment, criteria) in enumerate(rounds, 1):
            checklist = [
                {"criteria_id": i, "criteria_content": f"rule {sid}.{r}.{i}", "criteria_type": t}
                for i, (t, _) in enumerate(criteria, 1)
            ]
            turns.append(
                {
                    "round_index": r,
                    "user": f"q{sid}.{r}",
                    "alignment": alignment,
                    "criteria": checklist,
                }
            )
            verdicts = {str(i): v for i, (_, v) in enumerate(criteria, 1)}
            labels.append(
                {
                    "model": "toy",
                    "system_id": sid,
                    "round_index": r,
                    "answer": f"a{sid}.{r}",
                    "judge": "hand",
                    "reasoning": "",
                    "verdicts": verdicts,
                    "verdicts_raw": {
                        k: {T: "是", X: "否", N: "不适用"}[v] for k, v in verdicts.items()
                    },
                    "all_pass": X not in verdicts.values(),
                }
            )
        sessions.append(
            {
                "system_id": sid,
                "domain": "toy",
                "scene": None,
                "rounds_related": related,
                "system_prompt": f"system {sid}",
                "messages": [{"role": "system", "content": f"system {sid}"}]
                + [{"role": "user", "content": t["user"]} for t in turns],
                "turns": turns,
            }
        )
    if label_edits:
        label_edits(labels)
    data, lab = tmp_path / "sessions.jsonl", tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in sessions), "utf-8")
    lab.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in labels), "utf-8")
    return data, lab


def synthetic_score(tmp_path: Path, label_edits=None) -> dict:
    data, lab = synthetic_files(tmp_path, label_edits)
    return score(load_labels(lab), load_sessions(data), n_boot=200, ndigits=None)


def test_synthetic_metrics_by_hand(tmp_path):
    m = synthetic_score(tmp_path)
    approx = pytest.approx
    assert m["csr"] == approx(100 * 21 / 24)  # 24 constraints, 2 false, 1 null (not satisfied)
    assert m["isr"] == approx(100 * 13 / 15)  # 15 turns, 2 with a false verdict
    assert m["ssr"] == approx(100 * (3 / 5 + 0 / 5 + 5 / 5) / 3)  # streaks 3, 0, 5
    assert m["isr_align"] == approx(100 * 12 / 13)
    assert m["isr_misalign"] == approx(50.0)
    assert m["ssr_dependent"] == approx(100 * (3 / 5 + 0) / 2)
    assert m["ssr_parallel"] == approx(100.0)
    assert [m[f"r{k}"] for k in range(1, 6)] == approx([200 / 3] * 3 + [100 / 3] * 2)
    assert m["csr_by_type"] == approx(
        {A: 50.0, C: 100 * 11 / 12, B: 100.0, R: 100.0, F: 100.0, S: 100 * 5 / 6}
    )
    assert list(m["csr_by_type"]) == list(sysbench.TYPE_ALIASES)  # the paper's type order
    assert m["type_aliases"][A] == "action" and m["type_aliases"][S] == "style"
    assert (m["n_sessions"], m["n_turns"], m["n_constraints"], m["judge_errors"]) == (3, 15, 24, 0)
    assert m["model"] == "toy"


def test_official_breakdowns_by_hand(tmp_path):
    """The splits SysBench's analysis prints: R1..R5 and ISR by dependent/parallel session
    and aligned/misaligned turn, and each round's pass rate."""
    m = synthetic_score(tmp_path)
    approx = pytest.approx
    # sessions 1, 2 are dependent (streaks 3, 0), session 3 parallel (streak 5)
    assert [m[f"r{k}_dependent"] for k in range(1, 6)] == approx([50, 50, 50, 0, 0])
    assert [m[f"r{k}_parallel"] for k in range(1, 6)] == approx([100] * 5)
    assert m["isr_dependent"] == approx(80.0) and m["isr_parallel"] == approx(100.0)
    assert m["isr_dependent_align"] == approx(100 * 7 / 8)  # s1 round 4 fails
    assert m["isr_dependent_misalign"] == approx(50.0)  # s1 round 3 passes, s2 round 1 fails
    assert m["isr_parallel_align"] == approx(100.0)
    assert m["isr_parallel_misalign"] is None  # no such turn
    assert m["round_pass"] == approx({"1": 200 / 3, "2": 100, "3": 100, "4": 200 / 3, "5": 100})


def fail_judge(rows):  # session 3 round 2: the judge failed, no verdicts
    row = next(r for r in rows if (r["system_id"], r["round_index"]) == (3, 2))
    row.update(judge_error=True, verdicts={}, verdicts_raw={}, all_pass=False)


def test_an_unjudged_turn_leaves_its_session_out_and_lists_it(tmp_path):
    """SysBench's rule: a session with a turn never judged is not scored (judge it again)."""
    m = synthetic_score(tmp_path, fail_judge)
    assert (m["unjudged"], m["unjudged_sessions"], m["unjudged_turns"]) == (
        "session",
        [3],
        [[3, 2]],
    )
    assert (m["judge_errors"], m["n_sessions"], m["n_turns"], m["n_constraints"]) == (1, 2, 10, 14)
    assert m["csr"] == pytest.approx(100 * 11 / 14)
    assert m["isr"] == pytest.approx(100 * 8 / 10)
    assert m["ssr"] == pytest.approx(100 * (3 / 5 + 0) / 2)
    assert m["ssr_parallel"] is None and m["r1_parallel"] is None


def test_unjudged_turn_policy_leaves_only_the_turn_out_and_ends_the_streak(tmp_path):
    data, lab = synthetic_files(tmp_path, fail_judge)
    m = score(load_labels(lab), load_sessions(data), n_boot=200, ndigits=None, unjudged="turn")
    assert (m["judge_errors"], m["unjudged_sessions"], m["n_sessions"]) == (1, [3], 3)
    assert (m["n_turns"], m["n_constraints"]) == (14, 22)
    assert m["csr"] == pytest.approx(100 * 19 / 22)
    assert m["isr"] == pytest.approx(100 * 12 / 14)
    assert m["ssr"] == pytest.approx(100 * (3 / 5 + 0 + 1 / 5) / 3)  # session 3 streak stops at 1
    assert m["round_pass"]["2"] == pytest.approx(100.0)  # 2 of 2 judged round-2 turns pass
    with pytest.raises(ValueError, match="unjudged must be one of"):
        score(load_labels(lab), load_sessions(data), unjudged="drop")


def test_rounding_and_bootstrap_ci(tmp_path):
    data, lab = synthetic_files(tmp_path)
    labels, sessions = load_labels(lab), load_sessions(data)
    m = score(labels, sessions)
    assert m["csr"] == 87.5 and m["isr"] == 86.67 and m["ssr"] == 53.33
    assert m == score(labels, sessions)  # seeded
    for name in ("csr", "isr", "ssr"):
        lo, hi = m["ci95"][name]
        assert lo <= m[name] <= hi
    assert json.loads(json.dumps(m, ensure_ascii=False)) == m  # JSON-ready


def test_official_schema_without_turns_field(tmp_path):
    """Sessions in the upstream schema (messages + prompt_infos keyed by user text) load too."""
    data, lab = synthetic_files(tmp_path)
    rows = [json.loads(x) for x in data.read_text("utf-8").splitlines()]
    for row in rows:
        turns = row.pop("turns")
        row["prompt_infos"] = {
            t["user"]: {
                "alignment": t["alignment"],
                "criteria": {str(c["criteria_id"]): c for c in t["criteria"]},
            }
            for t in turns
        }
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    m = score(load_labels(lab), load_sessions(data), ndigits=None)
    assert m["csr"] == pytest.approx(87.5) and m["ssr_parallel"] == pytest.approx(100.0)


# ---------------------------------------------------------------- bad input


def _edit(line: int, fn):
    """A label edit applying fn to the row written on `line` (1-based)."""
    return lambda rows: fn(rows[line - 1])


LABEL_ROW_ERRORS = [
    (lambda r: r.pop("verdicts"), "field 'verdicts' is missing"),
    (lambda r: r.update(verdicts=["1"]), "field 'verdicts' must be dict, got list"),
    (lambda r: r["verdicts"].update({"1": "是"}), "field 'verdicts' value for '1'"),
    (lambda r: r.update(all_pass=True), "field 'all_pass' is true but criteria ['1'] judged false"),
    (lambda r: r.update(system_id="1"), "field 'system_id' must be int, got str"),
    (lambda r: r.update(round_index=True), "field 'round_index' must be int, got bool"),
    (lambda r: r.pop("reasoning"), "field 'reasoning' is missing"),
    (lambda r: r.update(judge_error="yes"), "field 'judge_error' must be bool, got str"),
]


@pytest.mark.parametrize("fn,message", LABEL_ROW_ERRORS)
def test_bad_label_rows_name_file_line_field(tmp_path, fn, message):
    _, lab = synthetic_files(tmp_path, _edit(4, fn))
    with pytest.raises(ValueError, match=re.escape(f"{lab}:4: {message}")):
        load_labels(lab)


def test_invalid_json_and_non_object_lines(tmp_path):
    _, lab = synthetic_files(tmp_path)
    lines = lab.read_text("utf-8").splitlines()
    lab.write_text("\n".join(lines[:2] + ["{oops"] + lines[3:]) + "\n", "utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{lab}:3: not valid JSON")):
        load_labels(lab)
    lab.write_text("\n".join(lines[:2] + ["[1, 2]"]) + "\n", "utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{lab}:3: expected a JSON object, got list")):
        load_labels(lab)
    lab.write_text("\n", "utf-8")
    with pytest.raises(ValueError, match="no labels"):
        load_labels(lab)


def _duplicate_row(rows):
    rows.append(copy.deepcopy(rows[6]))


def _model_mix(rows):
    rows[9]["model"] = "other"


COVERAGE_ERRORS = [
    (_edit(4, lambda r: r.update(system_id=99)), 4,
     "field 'system_id' names an unknown session 99"),
    (_edit(5, lambda r: r.update(round_index=6)), 5,
     "field 'round_index' is 6: session 1 has no round 6"),
    (_duplicate_row, 16,
     "field 'round_index' repeats: second label for session 2 round 2 (first at line 7)"),
    (_edit(2, lambda r: r["verdicts"].update({"7": True})), 2,
     "field 'verdicts' has ids that differ"),
    (_edit(3, lambda r: r["verdicts"].pop("3")), 3, "(missing ['3'], unknown [])"),
    (_model_mix, 10, "field 'model' differs: labels mix models 'toy' and 'other'"),
]  # fmt: skip


@pytest.mark.parametrize("edit,line,message", COVERAGE_ERRORS)
def test_labels_must_match_sessions(tmp_path, edit, line, message):
    data, lab = synthetic_files(tmp_path, edit)
    labels, sessions = load_labels(lab), load_sessions(data)
    with pytest.raises(ValueError, match=re.escape(f"{lab}:{line}: ") + ".*" + re.escape(message)):
        score(labels, sessions)


def test_labels_must_cover_every_turn(tmp_path):
    data, lab = synthetic_files(tmp_path, lambda rows: rows.pop(7))  # session 2 round 3
    with pytest.raises(
        ValueError, match=re.escape(f"{lab}: no label for 1 turns (session 2 round 3)")
    ):
        score(load_labels(lab), load_sessions(data))


SESSION_ERRORS = [
    (lambda s: s.pop("rounds_related"), "field 'rounds_related' is missing"),
    (lambda s: s["turns"].pop(), "field 'turns' must be a list of 5 rounds"),
    (lambda s: s["turns"][1].update(alignment="x"), "field 'turns[1].alignment' is 'x'"),
    (lambda s: s["turns"][2].update(round_index=4),
     "field 'turns[2].round_index' is 4, expected 3"),
    (lambda s: s["turns"][0]["criteria"][0].pop("criteria_type"),
     "field 'turns[0].criteria[0].criteria_type' is missing"),
    (lambda s: s["turns"][3].update(criteria=[]), "field 'turns[3].criteria' is empty"),
    (lambda s: s.update(system_id=1), "field 'system_id' repeats session 1"),
]  # fmt: skip


@pytest.mark.parametrize("fn,message", SESSION_ERRORS)
def test_bad_sessions_name_file_line_field(tmp_path, fn, message):
    data, _ = synthetic_files(tmp_path)
    rows = [json.loads(x) for x in data.read_text("utf-8").splitlines()]
    fn(rows[1])
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    with pytest.raises(ValueError, match=re.escape(f"{data}:2: {message}")):
        load_sessions(data)


# ---------------------------------------------------------------- command line


def test_cli_prints_json(tmp_path, capsys):
    data, lab = synthetic_files(tmp_path)
    returned = sysbench.main(["--labels", str(lab), "--data", str(data)])
    printed = json.loads(capsys.readouterr().out)
    assert printed == returned == score(load_labels(lab), load_sessions(data))


def test_cli_errors_raise(tmp_path, monkeypatch):
    data, lab = synthetic_files(tmp_path, _edit(1, lambda r: r.pop("all_pass")))
    with pytest.raises(ValueError, match=re.escape(f"{lab}:1: field 'all_pass' is missing")):
        sysbench.main(["--labels", str(lab), "--data", str(data)])
    monkeypatch.delenv("RPO_BENCH_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="RPO_BENCH_DATA"):
        sysbench.main(["--labels", str(lab)])  # default --data needs the data folder
    with pytest.raises(SystemExit):
        sysbench.main([])  # --labels is required


# ---------------------------------------------------------------- replay of the released labels


@pytest.fixture(scope="module")
def released():
    """(sessions, {model: labels}) from $RPO_BENCH_DATA; skips when SysBench is not available."""
    from rpo_bench.paths import sysbench_file

    try:
        sessions = load_sessions(sysbench_file("sysbench_eval.jsonl"))
        label_dir = sysbench_file("judge_labels")
    except FileNotFoundError as err:
        pytest.skip(f"SysBench data not available (it has no licence and is not vendored): {err}")
    return sessions, {p.stem: load_labels(p) for p in sorted(label_dir.glob("*.jsonl"))}


def test_released_sessions_match_the_documented_counts(released):
    sessions, _ = released
    turns = [t for s in sessions for t in s.turns]
    assert len(sessions) == 500 and len(turns) == 2500
    assert sum(s.rounds_related for s in sessions) == 356
    assert sum(t.alignment == "align" for t in turns) == 1951
    assert sum(len(t.criteria) for t in turns) == 5952


def test_every_label_file_scores(released):
    sessions, labels = released
    assert set(labels) == ALL_MODELS
    for model, rows in labels.items():
        m = score(rows, sessions, n_boot=100)
        assert m["model"] == model
        assert (m["n_sessions"], m["n_turns"], m["n_constraints"]) == (500, 2500, 5952)
        assert m["judge_errors"] == 0
        assert set(m["csr_by_type"]) == set(sysbench.TYPE_ALIASES)
        assert m["r1"] >= m["r2"] >= m["r3"] >= m["r4"] >= m["r5"]


# Which definitions reproduce the paper (checked on these labels): CSR counts only "是" (true)
# as satisfied, a null verdict (不适用, 无法判断, ...) is NOT satisfied; a turn passes (ISR,
# SSR) when no criterion is "否" (false), so a null does NOT fail it. This is the upstream
# `是否可用` column. Counting null as satisfied gives CSR 86.7 for gpt4_turbo_0409 and 76.8 for
# llama3_70b (paper 86.5 / 76.6). Letting null fail a turn gives ISR 76.2 / 76.4 / 60.0 for
# gpt4o / gpt4_turbo_0409 / llama3_70b (paper 76.4 / 76.6 / 60.3).
@pytest.mark.parametrize("model", sorted(PAPER))
def test_replay_reproduces_the_paper(released, model):
    sessions, labels = released
    m = score(labels[model], sessions, n_boot=100, ndigits=None)
    ours = tuple(round(m[k], 1) for k in ("csr", "isr", "ssr"))
    assert ours == pytest.approx(PAPER[model], abs=0.1 + 1e-9), (model, ours)


def test_other_null_handlings_do_not_reproduce(released):
    """Guards the choice above: the alternatives miss the paper by more than 0.1."""
    sessions, labels = released
    checklists = {(s.system_id, t.round_index): t.criteria for s in sessions for t in s.turns}

    def alternative(model):
        rows = labels[model]
        verdicts = [v for r in rows for v in r.verdicts.values()]
        csr_null_ok = 100 * sum(v is not False for v in verdicts) / len(verdicts)
        isr_null_fails = 100 * sum(all(v is True for v in r.verdicts.values()) for r in rows)
        assert len(rows) == len(checklists)
        return round(csr_null_ok, 1), round(isr_null_fails / len(rows), 1)

    assert abs(alternative("gpt4_turbo_0409")[0] - PAPER["gpt4_turbo_0409"][0]) > 0.1
    assert abs(alternative("llama3_70b")[0] - PAPER["llama3_70b"][0]) > 0.1
    assert abs(alternative("gpt4o")[1] - PAPER["gpt4o"][1]) > 0.1
    assert abs(alternative("llama3_70b")[1] - PAPER["llama3_70b"][1]) > 0.1


def test_replay_script_table(released):
    spec = importlib.util.spec_from_file_location(
        "sysbench_replay", REPO / "benchmarks" / "sysbench_replay.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.table().splitlines()[2:]
    assert len(rows) == len(ALL_MODELS)
    assert sum(r.endswith("| yes |") for r in rows) == len(PAPER)
    assert not any(r.endswith("| NO |") for r in rows)
