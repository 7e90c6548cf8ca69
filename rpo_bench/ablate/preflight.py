"""What a run checks before its first stage, and `--dry-run` checks alike: the report
folder, every model a stage still to compute loads, and every LLM endpoint such a stage
calls (its API key, then one one-token request). All problems are listed at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from rpo_bench.ablate.config import AblationConfig
from rpo_bench.ablate.store import Store


@dataclass(frozen=True)
class Endpoint:
    """An LLM endpoint the config names: which config section, and the stages that call it."""

    role: str
    model: str
    base_url: str
    options: dict[str, Any]
    stages: tuple[str, ...]


def endpoints(cfg: AblationConfig) -> list[Endpoint]:
    """Every LLM endpoint the config names, with the stages that call it."""
    from rpo_bench.ablate.builders import selector_endpoint
    from rpo_bench.judge.openai import DEFAULT_BASE_URL, DEFAULT_MODEL
    from rpo_bench.openai_client import client_options

    found = []
    d, s, j, r = cfg.data, cfg.sampling, cfg.judge, cfg.pairs.reverser
    if d.kind == "freetext" and d.file is None and d.generate is not None:
        g = d.generate
        found.append(Endpoint("data.generate", g.model, g.base_url, client_options(g.options),
                              ("conversations",)))  # fmt: skip
    if j.kind == "openai":
        stages = ("samples", "eval") if d.kind == "freetext" else ("samples",)
        found.append(Endpoint("judge", j.model or DEFAULT_MODEL, j.base_url or DEFAULT_BASE_URL,
                              client_options(j.options), stages))  # fmt: skip
    if j.triggered == "llm":  # the judge's endpoint, with its own default model
        model, base_url = selector_endpoint(j.model, j.base_url)
        found.append(Endpoint("judge.triggered", model, base_url, client_options(j.options),
                              ("judged",)))  # fmt: skip
    if s.teacher is not None and s.teacher.base_url is not None:
        t = s.teacher
        found.append(Endpoint("sampling.teacher", t.model, t.base_url, client_options(t.options),
                              ("samples",)))  # fmt: skip
    if r is not None:
        found.append(Endpoint("pairs.reverser", r.model, r.base_url, client_options(r.options),
                              ("pairs",)))  # fmt: skip
    return found


def local_models(cfg: AblationConfig) -> dict[str, tuple[str, ...]]:
    """Every model a stage loads on this machine: name -> the stages that load it."""
    used: dict[str, tuple[str, ...]] = {m: ("samples", "train", "eval") for m in cfg.grid.model}
    used |= {m: ("eval",) for m in cfg.grid.base_only}
    t = cfg.sampling.teacher
    if t is not None and t.base_url is None:
        used[t.model] = (*used.get(t.model, ()), "samples")
    if cfg.judge.kind == "hf" and cfg.judge.model:
        judged = ("samples", "eval") if cfg.data.kind == "freetext" else ("samples",)
        used[cfg.judge.model] = (*used.get(cfg.judge.model, ()), *judged)
    return used


def check(cfg: AblationConfig, stages: list[Path], hub_reachable: Callable[[], bool]) -> list[str]:
    """What stops this run before its first stage; an empty list when nothing does."""
    from rpo_bench import models
    from rpo_bench.openai_client import ChatClient, EndpointUnavailable

    kinds = {folder.parent.name for folder in stages}
    problems = []
    for name, used in local_models(cfg).items():
        if kinds & set(used) and (why := models.unavailable(name, hub_reachable)):
            problems.append(f"model {name!r}: {why}")
    for e in endpoints(cfg):
        if not kinds & set(e.stages):
            continue  # every stage that calls it is in the store already
        try:
            ChatClient(e.model, e.base_url, **e.options).check()
        except EndpointUnavailable as err:
            problems.append(f"config.{e.role} ({e.model}): {err}")
    return problems


def estimate(store: Store, stages: list[Path]) -> tuple[float, list[str]]:
    """(seconds the stages to compute should take, the stage kinds with no measured time):
    each stage at the median of its kind's times in this store."""
    seconds, unmeasured = 0.0, []
    for kind in sorted({folder.parent.name for folder in stages}):
        n = sum(folder.parent.name == kind for folder in stages)
        times = store.measured(kind)
        if times:
            seconds += n * median(times)
        else:
            unmeasured.append(kind)
    return seconds, unmeasured
