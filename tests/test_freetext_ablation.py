"""The free-text pipeline end to end (`ablations/smoke_freetext.yaml`): system prompts with
free-text constraints, an LLM judge, an LLM reverser with validation, pairs, training,
held-out evaluation by the judge, report. The judge and reverser are a deterministic fake
on 127.0.0.1 (`fake_freetext`), malformed answers included."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from fake_freetext import DROPPED_RULE, NOT, TEACHER, respond, satisfied
from fake_judge_server import FakeJudgeServer

from rpo_bench.roles import point_roles

from conftest import REPO

KEY_ENV = "RPO_TEST_FREETEXT_KEY"
SECRET = "sk-freetext-0123456789abcdef"
RULES_HEAD = "Follow these rules in every reply:\n"
SPICY_TURN = "fs-cooking/t2/"  # the turn whose triggered answer did not parse


def run_preset(
    folder, url: str, model: str | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """smoke_freetext.yaml with every LLM role (judge, triggered filter, reverser, teacher)
    at `url`: the fake (its key, quick retries), or with `model` a real local server, with
    the settings `rpo-bench serve` prints (`rpo_bench.roles`: every answer bounded)."""
    cfg = yaml.safe_load((REPO / "ablations" / "smoke_freetext.yaml").read_text())
    if model:
        cfg = point_roles(cfg, url, model)
    else:
        roles = (cfg["judge"], cfg["pairs"]["reverser"], cfg["sampling"]["teacher"])
        for role in roles:
            role["base_url"] = url
        cfg["judge"]["options"] |= {"api_key_env": KEY_ENV, "max_attempts": 2, "backoff": 0.01}
        for role in roles[1:]:
            role["options"] = {"api_key_env": KEY_ENV}
    config = folder / "smoke_freetext.yaml"
    config.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "rpo_bench.ablate", "--config", str(config),
           "--work", str(folder / "work"), "--out", str(folder / "report")]  # fmt: skip
    env = {**os.environ, KEY_ENV: SECRET}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def rules_of(prompt: list[dict]) -> list[str]:
    """The constraints a pair's prompt lists in its system message."""
    system = prompt[0]["content"]
    assert prompt[0]["role"] == "system" and RULES_HEAD in system
    return [line[2:] for line in system.split(RULES_HEAD, 1)[1].splitlines()]


@pytest.mark.slow
def test_free_text_smoke_preset_end_to_end_against_a_fake_endpoint(tmp_path):
    with FakeJudgeServer(respond=respond) as server:
        done = run_preset(tmp_path, server.url)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    cells = {c["strategy"]: c for c in results["cells"]}
    rpo = cells["rpo"]["pairs"]
    # the turn the judge never understood: no verdicts, no pairs, counted
    assert (rpo["turns_unjudged"], rpo["responses_unjudged"]) == (1, 3)
    # ... and the judge's count: those 3, the teacher's 2 samples and the critic pool's
    # check of its best reply, all of the same turn
    assert results["judging"]["smollm2-135m"]["unjudged"] == 6
    # one reversal fails validation (the fake repeats it) and is dropped, the others kept
    reversals = rpo["reversals"]
    assert reversals["dropped"] == 1 and reversals["dropped_why"] == {"same as the original": 1}
    assert reversals["validated"] >= 1 and rpo["pairs"] > 0
    (folder,) = [p for p in (tmp_path / "work" / "pairs").iterdir()
                 if json.loads((p / "inputs.json").read_text())["strategy"] == "rpo"]  # fmt: skip
    pairs = [json.loads(line) for line in (folder / "pairs.jsonl").open()]
    assert any(p["reversed"] for p in pairs)
    # the critic pool: teacher replies joined the turns whose best sample fell short, and
    # the statistics tell their pairs apart; the history is the teacher's
    assert rpo["pairs_off_policy"] > 0 and rpo["pairs_on_policy"] > 0
    (samples,) = (tmp_path / "work" / "samples").iterdir()
    rows = [json.loads(line) for line in (samples / "samples.jsonl").open()]
    assert [r["teacher"]["passed"] for r in rows].count(False) == 1  # the unjudged turn
    assert any(r["responses"][-1].get("source") == "teacher" for r in rows)
    assert all(m["content"].startswith(TEACHER) for r in rows for m in r["history"]
               if m["role"] == "assistant")  # fmt: skip
    for pair in pairs:
        rules = rules_of(pair["prompt"])
        # under rpo every chosen response satisfies its rewritten prompt, by the same judge
        assert all(satisfied(pair["chosen"], rule) for rule in rules), pair["id"]
        assert NOT + DROPPED_RULE not in rules  # a failed reversal is never shown
    # the triggered filter: every turn keeps 5 of its 6 constraints, except the one whose
    # answer did not parse (all 6 kept, counted)
    assert results["judging"]["smollm2-135m"]["triggered"]["unparsed"] == 1
    (judged,) = (tmp_path / "work" / "judged").iterdir()
    kept = sorted(len(r["triggered"]) for r in map(json.loads, (judged / "samples.jsonl").open()))
    assert kept == [5, 5, 5, 5, 5, 6]
    for pair in pairs:  # only the triggered constraints reach a pair's prompt
        shown = len(rules_of(pair["prompt"])) + len(pair["dropped"])
        assert shown == (6 if pair["id"].startswith(SPICY_TURN) else 5), pair["id"]
    # held-out turns scored by the judge, for the base model and both trained cells
    # (its second turn unjudged: scored None, counted, and every model's scores line up)
    for ev in [results["base"]["smollm2-135m"], *(c["eval"] for c in cells.values())]:
        assert len(ev["heldout"]["per_prompt"]) == 2 and ev["heldout"]["per_prompt"][1] is None
        assert ev["heldout"]["unjudged"] == 1
    (verdict,) = [r for r in results["analysis"]["comparisons"] if r["strategy"] == "rpo"
                  and r["reference"] == "dpo_count"]  # fmt: skip
    assert (verdict["n_prompts"], verdict["n_prompts_dropped"]) == (1, 1)
    assert (tmp_path / "report" / "report.md").exists()
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        assert SECRET.encode() not in path.read_bytes(), path
    print(json.dumps(results["judging"]))
    print(json.dumps({s: {k: c["pairs"].get(k) for k in ("pairs", "pairs_per_response",
          "turns", "turns_unjudged", "responses_unjudged", "reversals", "pairs_off_policy",
          "pairs_on_policy")}
          for s, c in cells.items()}, indent=1))  # fmt: skip


def test_system_prompts_written_by_a_teacher_become_the_conversations(tmp_path, monkeypatch):
    """`data.generate`: a teacher (the fake) writes the system prompts; a malformed answer is
    rejected and counted; the valid ones split into training and held-out conversations."""
    from fake_judge_server import Reply

    from rpo_bench.ablate import config as config_mod
    from rpo_bench.ablate.runner import Runner

    def writer(prompt: str) -> Reply | None:
        if "You write test data for instruction following" not in prompt:
            return None
        if "Role number 3:" in prompt:  # one answer with too few constraints: rejected
            return Reply(content='{"system": "x", "criteria": [], "turns": ["a", "b"]}')
        criteria = [{"content": f"Rule {k}.", "type": t} for k, t in enumerate(
            ["content", "format", "style", "role", "logic", "action"], 1)]  # fmt: skip
        return Reply(content=json.dumps({"system": "You help.", "criteria": criteria,
                                         "turns": ["Hello?", "Thanks!"]}))  # fmt: skip

    monkeypatch.setenv(KEY_ENV, SECRET)
    with FakeJudgeServer(respond=writer) as server:
        cfg = yaml.safe_load((REPO / "ablations" / "smoke_freetext.yaml").read_text())
        del cfg["data"]["file"]
        cfg["data"]["generate"] = {"model": "writer", "base_url": server.url, "domains": ["tea"],
                                   "per_domain": 5, "turns": 2,
                                   "options": {"api_key_env": KEY_ENV}}  # fmt: skip
        (tmp_path / "g.yaml").write_text(yaml.safe_dump(cfg))
        runner = Runner(config_mod.load(tmp_path / "g.yaml"), tmp_path / "work")
        train, _ = runner.conversations("train")
        heldout, _ = runner.conversations("heldout")
        calls = len(server.requests)
    rows = [json.loads(line) for line in (train / "conversations.jsonl").open()]
    held = [json.loads(line) for line in (heldout / "conversations.jsonl").open()]
    assert json.loads((train / "generated.json").read_text()) == {"asked": 5, "rejected": 1}
    assert [r["id"] for r in rows] == ["tea-1", "tea-2", "tea-4"] and held[0]["id"] == "tea-5"
    assert rows[0]["constraint_slot"] == "system" and len(rows[0]["turns"]) == 2
    assert rows[0]["turns"][0]["constraints"][0] == {"text": "Rule 1."}
    assert calls == 5 + 1  # the second stage asked again only for the rejected answer
