"""Every LLM role at one served endpoint (`rpo_bench.roles`): what `rpo-bench serve`
prints is a valid config and valid task metadata, and applying it to a preset moves every
role it has, keeps the rest, and adds none."""

from __future__ import annotations

import json

import yaml

from rpo_bench.ablate.config import AblationConfig, validate
from rpo_bench.evaluate.sysbench.task import make_sysbench_judge
from rpo_bench.roles import describe, point_roles, role_settings
from rpo_bench.typedconfig import build

from conftest import REPO

URL, MODEL = "http://127.0.0.1:8081/v1", "qwen2.5-coder-1.5b"


def preset(name: str) -> dict:
    return yaml.safe_load((REPO / "ablations" / f"{name}.yaml").read_text())


def test_every_role_of_the_free_text_preset_moves_and_nothing_else_changes():
    raw = preset("smoke_freetext")
    cfg = validate(build(AblationConfig, point_roles(raw, URL, MODEL)))
    roles = (cfg.judge, cfg.pairs.reverser, cfg.sampling.teacher)
    assert all((r.model, r.base_url) == (MODEL, URL) for r in roles)
    assert cfg.judge.options == {"prompt": "rpo_bench", "json_schema": True, "max_tokens": 1024}
    assert cfg.judge.triggered == "llm"  # the filter asks the judge's endpoint
    assert cfg.pairs.reverser.options == {"max_tokens": 128}
    teacher = raw["sampling"]["teacher"]
    assert cfg.sampling.teacher.n == teacher["n"]
    assert cfg.sampling.teacher.threshold == teacher["threshold"]
    assert cfg.data.generate is None  # the preset reads its prompts from a file: no writer added
    assert raw == preset("smoke_freetext")  # the input is not changed


def test_a_preset_without_llm_roles_is_left_as_it_is():
    raw = preset("smoke")  # the rule judge, verifiable constraints
    assert point_roles(raw, URL, MODEL) == raw


def test_what_serve_prints_is_a_config_and_task_metadata_that_load(tmp_path):
    text = describe(URL, MODEL)
    metadata = json.loads(text.split("--metadata '", 1)[1].split("'\n", 1)[0])
    metadata["judge_args"]["cache"] = str(tmp_path / "judge.sqlite")
    judge = make_sysbench_judge(metadata)
    assert (judge.model, judge.client.endpoint) == (MODEL, f"{URL}/chat/completions")
    assert judge.json_schema and judge.max_tokens == 1024
    assert judge.prompt.name == "rpo_bench"
    lines = text.split("(keep the ones it has", 1)[1].split("\n", 1)[1]
    printed = yaml.safe_load(lines)
    assert printed == role_settings(URL, MODEL)
    # pasted into the free-text preset, it is the same config point_roles makes
    raw = preset("smoke_freetext")
    raw["judge"] |= printed["judge"]
    raw["pairs"]["reverser"] = printed["pairs"]["reverser"]
    raw["sampling"]["teacher"] |= printed["sampling"]["teacher"]
    assert validate(build(AblationConfig, raw)) == validate(
        build(AblationConfig, point_roles(preset("smoke_freetext"), URL, MODEL))
    )
