"""`rpo-lm-eval`: lm-eval's own CLI with rpo_bench's lm-eval model `rpo_fast` registered
(`rpo_bench.rollout.lm_eval_model`), and rpo_bench's checks before the model loads."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from rpo_bench.evaluate import preflight


def _checked(process_tasks: Callable[..., Any]) -> Callable[..., Any]:
    """lm-eval's task resolution (`EvaluatorConfig.process_tasks`, which runs before the model
    loads), with rpo_bench's preflight checks: valid names listed, data looked for."""

    @functools.wraps(process_tasks)
    def wrapper(cfg: Any, metadata: dict | None = None) -> Any:
        given = [cfg.tasks] if isinstance(cfg.tasks, str) else list(cfg.tasks or [])
        # split as lm-eval splits them; a --config file may also give configs (dicts)
        names = [n for spec in given if isinstance(spec, str) for n in spec.split(",")]
        try:
            manager = process_tasks(cfg, metadata)
        except ValueError:  # lm-eval names the unknown tasks, not the valid ones
            preflight.check_tasks(names, cfg.include_path)
            raise
        preflight.check_data([t for t in cfg.tasks if isinstance(t, str)], cfg.metadata or {})
        return manager

    return wrapper


def cli() -> None:
    """`rpo-lm-eval`: lm-eval's own CLI, with `rpo_fast` registered. An unknown task name or
    missing benchmark data ends it before the model loads: the message, exit code 2."""
    from lm_eval.__main__ import cli_evaluate
    from lm_eval.config.evaluate_config import EvaluatorConfig

    from rpo_bench.rollout import lm_eval_model  # noqa: F401 (registers rpo_fast)

    # Patched in this process only: lm-eval's CLI offers no hook between the two steps.
    EvaluatorConfig.process_tasks = _checked(EvaluatorConfig.process_tasks)
    try:
        cli_evaluate()
    except (preflight.UnknownTask, preflight.MissingData) as err:
        print(f"rpo-lm-eval: error: {err}", file=sys.stderr)
        sys.exit(2)
