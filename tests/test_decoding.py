"""Decoding protocols: the tasks' settings are each benchmark's official ones by default,
SysBench's per model, and `greedy` keeps the budget; the choice reaches the results."""

from __future__ import annotations

import pytest
import yaml
from lm_eval.tasks import TaskManager, get_task_dict

from rpo_bench.evaluate import decoding
from rpo_bench.paths import REPO_ROOT, TASKS_DIR

MULTI_IF = {"data_file": str(REPO_ROOT / "tests" / "fixtures" / "multi_if_fixture.csv")}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def yaml_generation(path) -> dict:
    return yaml.load(path.read_text("utf-8"), Loader=_Loader)["generation_kwargs"]


@pytest.mark.parametrize(
    ("task", "path"),
    [
        ("ifeval_local", "ifeval_local/ifeval_local.yaml"),
        ("ifbench", "ifbench/ifbench.yaml"),
        ("multi_if", "multi_if/_multi_if_template"),
    ],
)
def test_task_yaml_holds_the_official_settings(task, path):
    assert yaml_generation(TASKS_DIR / path) == decoding.settings(task)["generation_kwargs"]


@pytest.fixture
def sysbench_data():
    from rpo_bench.paths import sysbench_file

    try:
        return sysbench_file()
    except FileNotFoundError as err:
        pytest.skip(f"SysBench data not available (set RPO_BENCH_DATA): {err}")


def loaded(task: str, metadata: dict):
    manager = TaskManager(include_path=str(TASKS_DIR), metadata=metadata)
    return get_task_dict([task], manager)[task].config


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", decoding.SYSBENCH_MODELS["llama-3.1-8b"]),
        ("/models/Meta-Llama-3.1-70B-Instruct", decoding.SYSBENCH_MODELS["llama-3.1-8b"]),
        ("Qwen/Qwen2-7B-Instruct", decoding.SYSBENCH_MODELS["qwen2-7b"]),
        ("THUDM/glm-4-9b-chat", decoding.SYSBENCH_MODELS["glm-4-9b"]),
        ("smollm2-135m", decoding.SYSBENCH_OTHER),
    ],
)
def test_sysbench_uses_the_models_reference_settings(sysbench_data, model, expected):
    config = loaded("sysbench_multiturn", {"pretrained": model})
    assert config.generation_kwargs == {"until": [], **expected}
    assert config.metadata["decoding"] == "official"
    if expected is decoding.SYSBENCH_OTHER:
        assert "no SysBench reference" in config.metadata["decoding_source"]


def test_greedy_keeps_the_budget(sysbench_data):
    config = loaded(
        "sysbench_multiturn", {"pretrained": "Qwen/Qwen2-7B-Instruct", "decoding": "greedy"}
    )
    assert config.generation_kwargs == {"until": [], "max_gen_toks": 2048, **decoding.GREEDY}
    multi_if = loaded("multi_if_english", {**MULTI_IF, "decoding": "greedy"})
    assert multi_if.generation_kwargs == {"until": [], "max_gen_toks": 1024, **decoding.GREEDY}
    assert loaded("multi_if_english", MULTI_IF).generation_kwargs == decoding.MULTI_IF


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="unknown decoding protocol 'beam'"):
        decoding.settings("multi_if", "beam")
