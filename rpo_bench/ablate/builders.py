"""What a config section builds: the judge, the triggered filter, the teacher, the reverser
and the system-prompt writer, each cached in the stage store's folder (`root`), so a rerun
asks no LLM twice. The runner calls these; the logic they run lives in the stages' own
packages (judge/, data/, constraints/)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rpo_bench.ablate.config import Data, Judge, Reverser, Sampling
from rpo_bench.rollout.settings import GenerationSettings


def judge(j: Judge, root: Path) -> Any:
    """The constraint judge: the rule judge, or an LLM judge whose unjudged responses are
    recorded (their turns get no pairs) rather than stopping the run."""
    from rpo_bench.judge import LLMConstraintJudge, make_constraint_judge, make_judge

    if j.kind == "rule":
        return make_constraint_judge("rule")
    args = {k: v for k, v in (("model", j.model), ("base_url", j.base_url)) if v}
    args = {"cache": root / "judge.sqlite", **args, **j.options}
    return LLMConstraintJudge(make_judge(j.kind, **args), keep_unjudged=True)


def selector(triggered: dict[str, Any], root: Path) -> Any:
    """The triggered filter (`judge.triggered: llm`): the judge's model, base_url and client
    options (`runner.Runner.judged` names them)."""
    from rpo_bench.judge.triggered import TriggeredSelector
    from rpo_bench.llm import OpenAICompleter
    from rpo_bench.openai_client import client_options
    from rpo_bench.textcache import TextCache

    t = triggered
    model, base_url = selector_endpoint(t["model"], t["base_url"])
    options = t.get("options", {})  # the judge's: its max_tokens bounds these answers too
    completer = OpenAICompleter(
        model, base_url, max_tokens=options.get("max_tokens"), **client_options(options)
    )
    return TriggeredSelector(completer, TextCache(root / "triggered.sqlite", "triggered"))


def selector_endpoint(model: str | None, base_url: str | None) -> tuple[str, str]:
    """The triggered filter's (model, base_url): the judge's, or gpt-4o-mini at OpenAI."""
    from rpo_bench.llm import OPENAI

    return model or "gpt-4o-mini", base_url or OPENAI


def teacher(s: Sampling, local: Callable[[str], Any]) -> Any:
    """The teacher of `history: teacher` (None without one): an endpoint, or with no
    base_url the local model `local(name)` gives."""
    t = s.teacher
    if t is None:
        return None
    from rpo_bench.data.teacher import Teacher

    if t.base_url is None:
        backend = local(t.model)
    else:
        from rpo_bench.rollout.openai import OpenAIBackend

        backend = OpenAIBackend(t.model, t.base_url, **t.options)
    settings = GenerationSettings.of(s, n=t.n)
    return Teacher(backend, settings, t.threshold, t.critique_rounds)


def reverser(r: Reverser | None, root: Path) -> Any:
    """The LLM reverser of free-text constraints (None without one), its answers validated."""
    if r is None:
        return None
    from rpo_bench.constraints.llm_reversal import CheckedReverser, LLMReverser
    from rpo_bench.llm import OpenAICompleter

    completer = OpenAICompleter(r.model, r.base_url, **r.options)
    return CheckedReverser(LLMReverser(completer, cache=root / "reversal.sqlite"))


def system_prompts(d: Data, root: Path, file: Path | None) -> tuple[list, str, dict | None]:
    """(system prompts, where they came from, the writer's counts or None): those of the
    file, or those the `data.generate` teacher writes (rejected answers counted)."""
    from rpo_bench.data import freetext

    if file is not None:
        return freetext.read_system_prompts(file), str(d.file), None
    from rpo_bench.llm import OpenAICompleter
    from rpo_bench.textcache import TextCache

    g = d.generate
    writer = OpenAICompleter(g.model, g.base_url, **g.options)
    cache = TextCache(root / "system_prompts.sqlite", "system_prompts")
    prompts, rejected = freetext.generate_system_prompts(
        writer, g.domains, g.per_domain, g.turns, cache
    )
    source = f"the {g.model} teacher's {len(prompts)} valid system prompts"
    return prompts, source, {"asked": len(g.domains) * g.per_domain, "rejected": rejected}
