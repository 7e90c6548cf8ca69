"""Every LLM role pointed at one OpenAI-compatible server (`rpo-bench serve` prints these
settings; the real-server tests and benchmarks apply them to a preset).

A small model on a CPU server may write until its slot's context is full, so every answer
is bounded: the judge's at 1,024 tokens as in the calibration (its schema caps the reasoning
at 600 characters, up to about three tokens each in Chinese for a small model's tokenizer;
the triggered filter takes the judge's endpoint and bound), the system-prompt writer's at
512, the reverser's at 128, the teacher's by `sampling.max_new_tokens` as always. The judge
uses the project's prompt constrained to its JSON schema, so every answer parses
(docs/local_server.md).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

JUDGE_TOKENS, WRITER_TOKENS, REVERSER_TOKENS = 1024, 512, 128

# (section, key) of each role's endpoint in an ablation config; key None: the section is it
ROLES = (("judge", None), ("pairs", "reverser"), ("sampling", "teacher"), ("data", "generate"))


def role_settings(url: str, model: str) -> dict[str, Any]:
    """Each role's endpoint settings at `url`, nested as in a config (`ROLES`)."""
    at = {"model": model, "base_url": url}
    return {
        "judge": {"kind": "openai", **at,
                  "options": {"prompt": "rpo_bench", "json_schema": True,
                              "max_tokens": JUDGE_TOKENS}},
        "pairs": {"reverser": {**at, "options": {"max_tokens": REVERSER_TOKENS}}},
        "sampling": {"teacher": dict(at)},
        "data": {"generate": {**at, "options": {"max_tokens": WRITER_TOKENS}}},
    }  # fmt: skip


def point_roles(raw: dict[str, Any], url: str, model: str) -> dict[str, Any]:
    """A copy of a raw config (its YAML as read) whose every LLM role it has is at `url`;
    a role the config lacks is not added, and its other settings are kept."""
    cfg = copy.deepcopy(raw)
    settings = role_settings(url, model)
    for section, key in ROLES:
        role = cfg.get(section) if key is None else (cfg.get(section) or {}).get(key)
        if not isinstance(role, dict) or (key is None and role.get("kind") != "openai"):
            continue  # absent, or a judge that needs no LLM (rule)
        new = settings[section] if key is None else settings[section][key]
        role.update({k: v for k, v in new.items() if k != "options"})
        role["options"] = {**(role.get("options") or {}), **new.get("options", {})}
    return cfg


def lm_eval_metadata(url: str, model: str) -> dict[str, Any]:
    """`--metadata` for `sysbench_multiturn` (and the other judged tasks) judged at `url`."""
    options = dict(role_settings(url, model)["judge"]["options"])
    prompt = options.pop("prompt")
    return {"judge": "openai", "judge_prompt": prompt,
            "judge_args": {"model": model, "base_url": url, **options}}  # fmt: skip


def describe(url: str, model: str) -> str:
    """What `rpo-bench serve` prints: the `--metadata` and the config lines that put every
    role at `url`."""
    config = yaml.safe_dump(
        role_settings(url, model), sort_keys=False, default_flow_style=None, width=100
    )
    return (
        "sysbench_multiturn judged here (rpo-bench eval or rpo-lm-eval):\n"
        f"  --metadata '{json.dumps(lm_eval_metadata(url, model), ensure_ascii=False)}'\n"
        "an ablation config's LLM roles here (keep the ones it has: the teacher with history: "
        "teacher, the writer with free-text data and no file):\n"
        + "".join(f"  {line}\n" for line in config.splitlines())
    )
