"""Run rpo_bench's lm-eval tasks on a model and write the results next to their config."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from rpo_bench import models
from rpo_bench.evaluate import decoding
from rpo_bench.files import write_atomic
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import TASKS_DIR


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    names = ("rpo-bench", "lm-eval", "torch", "transformers", "nltk", "langdetect")
    return {n: md.version(n) for n in names} | {"python": platform.python_version()}


def _breakdowns(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The official per-category and per-instruction report of tasks that have one."""
    out: dict[str, Any] = {}
    if "ifbench" in samples:
        from rpo_bench.evaluate import ifbench

        keys = ("prompt_level_strict_acc", "inst_level_strict_acc")
        keys += ("prompt_level_loose_acc", "inst_level_loose_acc")
        rows = [{**s["doc"], **{k: s[k] for k in keys}} for s in samples["ifbench"]]
        out["ifbench"] = ifbench.breakdown(rows)
    return out


def _checkers(tasks: list[str]) -> dict[str, Any]:
    """The checker code that scored each task, where it is not rpo_bench's own."""
    out: dict[str, Any] = {}
    if "ifbench" in tasks:
        from rpo_bench.evaluate import ifbench

        out["ifbench"] = ifbench.checker_version()
    return out


def run(
    model: str = models.DEFAULT_MODEL,
    tasks: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    max_gen_toks: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    metadata: dict[str, Any] | None = None,
    engine: str = "hf",
    decoding_protocol: str = decoding.DEFAULT_PROTOCOL,
) -> dict[str, Any]:
    """Evaluate `model` on `tasks` through lm-eval (chat template applied); write
    results.json and one samples_<task>.jsonl per task under `out`. `metadata` reaches
    the tasks (e.g. sysbench_multiturn's `judge` and `judge_args`). `engine`: `hf` is
    lm-eval's HF model; any rollout engine name runs lm-eval model `rpo_fast` with it.
    `decoding_protocol`: each task's `official` settings, or `greedy` with the same token
    budget; results.json records, per task, the protocol and the settings lm-eval used.
    Unknown task names and missing data stop it before the model loads (`preflight`)."""
    if not (TASKS_DIR / "ifeval_local").is_dir():
        raise FileNotFoundError(
            f"task definitions not found at {TASKS_DIR}: install rpo_bench from its checkout "
            "(pip install -e .) so the top-level tasks/ folder is reachable"
        )
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    from rpo_bench.evaluate import preflight

    tasks = tasks or ["ifeval_local"]
    if decoding_protocol not in decoding.PROTOCOLS:
        raise ValueError(f"unknown decoding protocol {decoding_protocol!r}")
    gen_kwargs: dict[str, Any] = dict(decoding.GREEDY) if decoding_protocol == "greedy" else {}
    gen_kwargs |= {"max_gen_toks": max_gen_toks} if max_gen_toks else {}
    # Multi-turn tasks choose their settings from these (SysBench: per model).
    metadata = {
        "model_name": model,
        "seed": seed,
        **(metadata or {}),
        "decoding": decoding_protocol,
    }
    preflight.check_data(tasks, metadata)  # first: it needs no index of lm-eval's tasks
    started = time.time()
    task_manager = TaskManager(include_path=str(TASKS_DIR), metadata=metadata)
    preflight.check_tasks(tasks, TASKS_DIR, task_manager)
    path = models.resolve(model)
    config = {
        "model": model,
        "model_path": path,
        "tasks": tasks,
        "limit": limit,
        "batch_size": batch_size,
        "gen_kwargs": gen_kwargs or None,
        "decoding": decoding_protocol,
        "seed": seed,
        "apply_chat_template": True,
        "metadata": metadata,
        "engine": engine,
    }
    model_args: dict[str, Any] = {"pretrained": path, "dtype": "float32"}
    lm_name = "hf"
    if engine != "hf":
        from rpo_bench.rollout import lm_eval_model
        from rpo_bench.rollout.settings import engine as resolve_engine

        lm_name, model_args["engine"] = lm_eval_model.NAME, engine
        config["engine_settings"] = resolve_engine(engine).to_dict()
    results = lm_eval.simple_evaluate(
        model=lm_name,
        model_args=model_args,
        device="cuda" if torch.cuda.is_available() else "cpu",
        tasks=tasks,
        task_manager=task_manager,
        apply_chat_template=True,
        limit=limit,
        batch_size=batch_size,
        gen_kwargs=gen_kwargs or None,
        log_samples=True,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    summary = {
        "results": results["results"],
        "decoding": {
            task: {
                "protocol": decoding_protocol,
                "generation_kwargs": cfg.get("generation_kwargs"),
                "source": (cfg.get("metadata") or {}).get("decoding_source")
                or decoding.source(task, decoding_protocol, model),
            }
            for task, cfg in results.get("configs", {}).items()
        },
        "breakdowns": _breakdowns(results.get("samples", {})),
        "checkers": _checkers(tasks),
        "n_samples": results.get("n-samples"),
        "config": config,
        "versions": _versions(),
        "wall_seconds": round(time.time() - started, 1),
    }
    if out is not None:
        out = Path(out)
        write_atomic(out / "results.json", json.dumps(summary, indent=2, default=str) + "\n")
        for task, samples in results.get("samples", {}).items():
            lines = "".join(json.dumps(s, default=str, ensure_ascii=False) + "\n" for s in samples)
            write_atomic(out / f"samples_{task}.jsonl", lines)
    summary["table"] = lm_eval.utils.make_table(results)
    return summary


def run_task(name: str, model: str, out: Path, **options: Any) -> dict[str, Any]:
    """One task run by lm-eval (`run`, `options` its settings): its numeric metrics, and
    per-document scores from its logged samples (doc order; the registry's scorer)."""
    from rpo_bench.evaluate.tasks import task

    summary = run(model=model, tasks=[name], out=out, **options)
    metrics = {
        k.split(",")[0]: float(v)
        for k, v in summary["results"][name].items()
        if isinstance(v, int | float) and "stderr" not in k
    }
    per_prompt = []
    for path in sorted(out.glob(f"samples_{name}*.jsonl")):  # a group: one file per subtask
        for sample in sorted(read_jsonl(path), key=lambda s: s["doc_id"]):
            per_prompt += task(name).document_scores(sample)
    return {"metrics": metrics, "per_prompt": per_prompt}
