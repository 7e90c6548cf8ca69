"""What an ablation run checks before its first stage, and `--dry-run` alike: the report
folder by its files' names, the endpoints a stage still to compute calls, a time estimate
from the store's measured stages; a run in which nothing could be judged exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from fake_judge_server import FakeJudgeServer, Reply
from test_ablate_faults import MICRO
from test_fail_fast import closed_port

from rpo_bench.ablate import config as config_mod
from rpo_bench.ablate import preflight

from conftest import REPO

KEY_ENV = "RPO_BENCH_TEST_PREFLIGHT_KEY"


def ablate(config: Path, work: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rpo_bench.ablate", "--config", str(config),
           "--work", str(work), *args]  # fmt: skip
    env = {**os.environ, KEY_ENV: "sk-test"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def freetext_config(folder: Path, url: str) -> Path:
    """smoke_freetext with every LLM role at `url`."""
    cfg = yaml.safe_load((REPO / "ablations" / "smoke_freetext.yaml").read_text())
    options = {"api_key_env": KEY_ENV, "max_attempts": 10, "backoff": 60}
    cfg["judge"] |= {"base_url": url}
    cfg["judge"]["options"] |= options
    cfg["pairs"]["reverser"] |= {"base_url": url, "options": options}
    cfg["sampling"]["teacher"] |= {"base_url": url, "options": options}
    path = folder / "smoke_freetext.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_dry_run_asks_each_endpoint_once_and_passes(tmp_path):
    with FakeJudgeServer() as server:
        done = ablate(freetext_config(tmp_path, server.url), tmp_path / "work", "--dry-run")
        assert (server.pings, len(server.requests)) == (1, 0)  # one model at one endpoint
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stages: 11 to compute" in done.stdout
    assert "dry run: every check a run makes before its first stage passed" in done.stdout


def test_endpoints_with_nothing_listening_stop_the_run_before_its_first_stage(tmp_path):
    url = closed_port()
    done = ablate(freetext_config(tmp_path, url), tmp_path / "work")
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert lines[0] == "rpo_bench.ablate: error: this run cannot start:"
    for role in ("judge", "sampling.teacher", "pairs.reverser"):
        assert any(
            line.startswith(
                f"  config.{role} (gpt-4o-mini): {url}/chat/completions: nothing "
                "is listening there (connection refused)"
            )  # fmt: skip
            for line in lines
        ), role
    assert "Traceback" not in done.stderr and not (tmp_path / "work").exists()


def test_an_endpoint_whose_stages_are_all_stored_is_not_asked():
    cfg = config_mod.load(REPO / "ablations" / "smoke_freetext.yaml")
    roles = {e.role: e.stages for e in preflight.endpoints(cfg)}
    assert roles == {"judge": ("samples", "eval"), "judge.triggered": ("judged",),
                     "sampling.teacher": ("samples",), "pairs.reverser": ("pairs",)}  # fmt: skip
    # nothing left to compute: no endpoint is needed, so none is asked (none could answer)
    assert preflight.check(cfg, [], hub_reachable=lambda: False) == []
    (problem,) = preflight.check(cfg, [Path("work/pairs/0123")], hub_reachable=lambda: False)
    assert problem.startswith("config.pairs.reverser (gpt-4o-mini): https://api.openai.com")


def test_a_report_folder_may_hold_only_a_reports_files_by_name(tmp_path):
    config = tmp_path / "micro.yaml"
    config.write_text(MICRO)
    out = tmp_path / "report"
    out.mkdir()
    (out / "pairs.png").write_bytes(b"")  # a report's own: replaced with it
    (out / "holiday.png").write_bytes(b"")  # a PNG, but no report makes it
    done = ablate(config, tmp_path / "work", "--out", str(out), "--dry-run")
    assert done.returncode == 2
    assert "--out" in done.stderr
    assert "holds files that are no report's (holiday.png)" in done.stderr


def test_dry_run_estimates_the_time_from_the_stores_measured_stages(tmp_path):
    work = tmp_path / "work"
    seconds = {"conversations": 10, "samples": 600, "judged": 5, "pairs": 5, "train": 300}
    for stage, s in seconds.items():  # finished stages of other studies in the same store
        for i, factor in enumerate((0.5, 1.0, 4.0)):  # the median is what counts
            folder = work / stage / f"other{i}"
            folder.mkdir(parents=True)
            (folder / "timing.json").write_text(json.dumps({"seconds": s * factor}))
    done = ablate(REPO / "ablations" / "cpu.yaml", work, "--dry-run")
    assert done.returncode == 0, done.stderr[-2000:]
    # cpu: 2 conversations, 1 sampling pass, 1 judged, 3 pairs, 3 trainings: 1540 s
    assert "estimate: about 26 min at this store's median stage times, plus eval, gold (not " \
        "measured here yet)" in done.stdout  # fmt: skip
    assert "stages: 15 to compute" in done.stdout and f"work: {work}" in done.stdout


def test_a_run_in_which_no_response_could_be_judged_exits_1(tmp_path):
    config = tmp_path / "micro.yaml"
    text = MICRO.replace("n_conversations: 4, heldout_conversations: 2",
                         "n_conversations: 2, heldout_conversations: 1")  # fmt: skip
    text = text.replace("n: 4,", "n: 2,").replace("tasks: [heldout, ifeval_local]", "tasks: []")
    with FakeJudgeServer(respond=lambda prompt: Reply(content="no idea")) as server:
        config.write_text(text + f"judge: {{kind: openai, model: fake, base_url: '{server.url}', "
                          f"options: {{api_key_env: {KEY_ENV}, max_attempts: 1}}}}\n")  # fmt: skip
        done = ablate(config, tmp_path / "work", "--out", str(tmp_path / "report"))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "rpo_bench.ablate: error: judge llm:fake could judge none of the 4 responses" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr and not (tmp_path / "report").exists()
