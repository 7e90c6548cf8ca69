"""Decoding protocols: each task's `official` generation settings, and `greedy`.

`official` is what the benchmark's own code uses (docs/benchmarks.md lists the sources);
`greedy` is deterministic decoding with the task's token budget. A protocol's settings are
lm-eval `generation_kwargs`; `settings()` also says where they come from, and the result
files record both next to the numbers.

SysBench has no single setting: its code calls each model with that model's own
reference settings. Models it has none for get `SYSBENCH_OTHER`, and the note says so.
"""

from __future__ import annotations

from typing import Any

PROTOCOLS = ("official", "greedy")
DEFAULT_PROTOCOL = "official"
GREEDY = {"do_sample": False, "temperature": 0.0}

# IFEval (lm-eval's ifeval task, as Google's evaluation): greedy, 1280 new tokens.
IFEVAL = {"until": [], "do_sample": False, "temperature": 0.0, "max_gen_toks": 1280}
# IFBench (README: temperature 0; generate_responses.py: 4096 new tokens by default).
IFBENCH = {"until": [], "do_sample": False, "temperature": 0.0, "max_gen_toks": 4096}
# Multi-IF's inference: temperature 0.6, top_p 0.9, 1024 new tokens (vLLM, seed 42).
MULTI_IF = {"until": [], "do_sample": True, "temperature": 0.6, "top_p": 0.9, "max_gen_toks": 1024}

# SysBench's per-model reference settings (its models/*.py at commit 627ffa8), matched on
# the lower-cased model name or path.
SYSBENCH_MODELS: dict[str, dict[str, Any]] = {
    # models/llama3_1_{8b,70b}.py: vLLM server, temperature 0.9, top_k 5, top_p 0.85, ...
    "llama-3.1-8b": {
        "do_sample": True,
        "temperature": 0.9,
        "top_p": 0.85,
        "top_k": 5,
        "repetition_penalty": 1.05,
        "max_gen_toks": 1000,
    },
    # models/qwen2_{7b,72b}.py: HF generate with max_new_tokens=2048 and the model's own
    # generation_config (Qwen2-Instruct: sampling at 0.7, top_p 0.8, top_k 20, penalty 1.05).
    "qwen2-7b": {
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "repetition_penalty": 1.05,
        "max_gen_toks": 2048,
    },
    # models/glm_9b_client.py: temperature 0.8, top_p 0.8, max_tokens 8192.
    "glm-4-9b": {"do_sample": True, "temperature": 0.8, "top_p": 0.8, "max_gen_toks": 8192},
}
SYSBENCH_MODELS["llama-3.1-70b"] = SYSBENCH_MODELS["llama-3.1-8b"]
SYSBENCH_MODELS["qwen2-72b"] = SYSBENCH_MODELS["qwen2-7b"]
# No reference: greedy with the budget of SysBench's open-weight Llama runs.
SYSBENCH_OTHER = {"do_sample": False, "temperature": 0.0, "max_gen_toks": 1000}

OFFICIAL = {"ifeval_local": IFEVAL, "ifbench": IFBENCH, "multi_if": MULTI_IF}
SOURCES = {
    "ifeval_local": "IFEval's evaluation (lm-eval ifeval): greedy, 1280 new tokens",
    "ifbench": "IFBench's generation: temperature 0, 4096 new tokens",
    "multi_if": "Multi-IF's inference: temperature 0.6, top_p 0.9, 1024 new tokens",
}


def task_family(task: str) -> str:
    """The task a Multi-IF language belongs to (multi_if); any other task is its own."""
    return "multi_if" if task.startswith("multi_if") else task


def settings(task: str, protocol: str = DEFAULT_PROTOCOL, model: str | None = None) -> dict:
    """{"protocol", "generation_kwargs", "source"} for `task` under `protocol`; `model` (a
    name or path) picks SysBench's per-model reference settings."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown decoding protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    family = task_family(task)
    if family == "sysbench_multiturn":
        name = (model or "").lower().replace("meta-llama-", "llama-")
        match = next((k for k in SYSBENCH_MODELS if k in name), None)
        base = SYSBENCH_MODELS[match] if match else SYSBENCH_OTHER
        source = (
            f"SysBench's reference settings for {match}"
            if match
            else f"no SysBench reference for {model or 'this model'}: greedy, 1000 new tokens"
        )
        kwargs = {"until": [], **base}
    elif family in OFFICIAL:
        kwargs, source = dict(OFFICIAL[family]), SOURCES[family]
    else:
        raise ValueError(f"no decoding protocol for task {task!r}")
    if protocol == "greedy":
        kwargs = {k: v for k, v in kwargs.items() if k in ("until", "max_gen_toks")} | GREEDY
        source = f"greedy, the official token budget ({kwargs['max_gen_toks']})"
    return {"protocol": protocol, "generation_kwargs": kwargs, "source": source}


def source(task: str, protocol: str, model: str | None = None) -> str | None:
    """Where `task`'s settings under `protocol` come from; None for a task with no protocol."""
    try:
        return settings(task, protocol, model)["source"]
    except ValueError:
        return None
