"""Report groups: a model, or a model at one setting of the optional axes.

The analysis compares strategies within a group (same model, same `min_margin`, same
`margin_mode`, same `epochs`), so each setting gets its own tables, verdicts and plots,
headed by the model and the axis values. A grid without those axes has one group per model, named
by the model alone, so its report is unchanged.
"""

from __future__ import annotations

from typing import Any

from rpo_bench.ablate.config import axis_label


def group(cell: dict[str, Any]) -> str:
    """'smollm2-135m' or 'smollm2-135m, min_margin=3, margin_mode=inside_beta'."""
    label = axis_label(cell)
    return f"{cell['model']}, {label}" if label else cell["model"]


def by_group(results: dict[str, Any]) -> dict[str, Any]:
    """`results` with each cell's `model` replaced by its group and the untrained model's
    evaluation under every group of its model (one evaluation serves them all);
    `group_models` maps a group back to its model."""
    cells = [{**c, "model": group(c)} for c in results["cells"]]
    models = {g["model"]: c["model"] for g, c in zip(cells, results["cells"], strict=True)}
    base = {g: results["base"][m] for g, m in models.items() if m in results["base"]}
    if all(g == m for g, m in models.items()):
        base = results["base"]  # no optional axis: exactly the model's own rows
    return {**results, "cells": cells, "base": base, "group_models": models}
