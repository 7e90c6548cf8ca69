"""Paired comparisons, power and the verdict on the primary endpoint, from collected results.

Every number here is in points (per-prompt scores x 100). A comparison A - B at one noise
level is the seeds x prompts table of per-prompt differences: the prompts are the same in
every cell, and seed s of either arm shares its noise flips (one judging pass per (p,
seed)), so both axes are paired (rpo_bench.ablate.stats). A prompt unscorable in any seed
of either arm is left out of that comparison.

The learning gate: a comparison between two trained strategies keeps its statistical
verdict (`statistical_verdict`) but is reported "inconclusive" unless both sides learned:
every seed's gold-set accuracy interval lies above `analysis.learning_threshold`. A
difference between models that did not learn is not evidence about their methods.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import numpy as np

from rpo_bench.ablate.config import BASE, ROBUST_LOSSES, Analysis
from rpo_bench.ablate.stats import hierarchical_bootstrap, power, seeds_needed

DETECTED = "detected"
NOT_DETECTED = "not detected"
UNDERPOWERED = "underpowered (MDE > effect of interest)"
ONE_SEED_NOTE = "seed-to-seed variance not measured (one seed): the MDE covers prompts only"
INCONCLUSIVE = "inconclusive"
LEARNED, NOT_LEARNED, NOT_MEASURED = "learned", "did not learn", "not measured"


def settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config's analysis section, defaults filled (results from before it existed)."""
    default = Analysis()
    raw = cfg.get("analysis") or {}
    primary = {**vars(default.primary), **raw.get("primary", {})}
    return {
        "primary": primary,
        "effect_of_interest": float(raw.get("effect_of_interest", default.effect_of_interest)),
        "robust": list(raw.get("robust") or robust_variants(cfg, primary["reference"])),
        "learning_threshold": float(raw.get("learning_threshold", default.learning_threshold)),
        "placebo": raw.get("placebo", default.placebo),
    }


def robust_variants(cfg: dict[str, Any], reference: str) -> list[str]:
    """Grid variants that train the reference's pairs with a noise-robust loss."""
    pairs_of = {k: v["pairs"] for k, v in cfg.get("strategies", {}).items()}
    base_pairs = pairs_of.get(reference, reference)
    found = []
    for name, variant in cfg.get("strategies", {}).items():
        loss = variant.get("train", {}).get("loss", cfg.get("train", {}).get("loss"))
        if variant["pairs"] == base_pairs and loss in ROBUST_LOSSES:
            found.append(name)
    return found


def verdict(lo: float, hi: float, mde: float | None, effect: float) -> str:
    """An interval that excludes 0 is a detection whatever the power; otherwise the null
    result means something only if the design could have seen `effect`."""
    if lo > 0 or hi < 0:
        return DETECTED
    if mde is None or mde > effect:
        return UNDERPOWERED
    return NOT_DETECTED


def gold_point(cell: dict[str, Any]) -> dict[str, Any] | None:
    """A cell's gold-set metrics at the end of its training, or None where not measured."""
    points = cell.get("train", {}).get("learning") or []
    return points[-1].get("gold") if points else None


def learning_status(results: dict[str, Any], threshold: float) -> dict[tuple, dict[str, Any]]:
    """(model, strategy, noise) -> whether its models learned: `learned` where every seed's
    gold-set accuracy interval lies above `threshold`, else `did not learn` (the seed with
    the lowest bound is named) or `not measured` (a seed without a gold set)."""
    by_arm: dict[tuple, list] = defaultdict(list)
    for c in results["cells"]:
        by_arm[(c["model"], c["strategy"], c["noise"])].append((c["seed"], gold_point(c)))
    status = {}
    for arm, seeds in by_arm.items():
        if any(g is None for _, g in seeds):
            status[arm] = {"status": NOT_MEASURED}
            continue
        seed, worst = min(seeds, key=lambda sg: sg[1]["accuracy_ci95"][0])
        learned = worst["accuracy_ci95"][0] > threshold
        status[arm] = {"status": LEARNED if learned else NOT_LEARNED, "seed": seed,
                       "gold_accuracy": worst["accuracy"], "ci95": worst["accuracy_ci95"],
                       "n": worst["n"], "threshold": threshold}  # fmt: skip
    return status


def describe_learning(strategy: str, s: dict[str, Any]) -> str:
    """'rpo did not learn (gold accuracy 0.52 [0.45, 0.59])', or its other states."""
    if s["status"] == NOT_MEASURED:
        return f"{strategy}: learning not measured (no gold set)"
    lo, hi = s["ci95"]
    seed = f", seed {s['seed']}" if s.get("seed") is not None else ""
    accuracy = f"gold accuracy {s['gold_accuracy']:.2f} [{lo:.2f}, {hi:.2f}]{seed}"
    return f"{strategy} {s['status']} ({accuracy})"


def gate(r: dict[str, Any], status: dict[tuple, dict[str, Any]]) -> dict[str, Any]:
    """`r` with its trained sides' learning status; between two trained strategies, an
    inconclusive verdict unless both learned (the statistical one kept beside it)."""
    sides = [n for n in (r["strategy"], r["reference"]) if n != BASE]
    learning = {n: status.get((r["model"], n, r["noise"]), {"status": NOT_MEASURED}) for n in sides}
    out = {**r, "learning": learning}
    failed = [describe_learning(n, s) for n, s in learning.items() if s["status"] != LEARNED]
    if len(sides) == 2 and failed:
        inconclusive = f"{INCONCLUSIVE}: " + "; ".join(failed)
        out |= {"statistical_verdict": r["verdict"], "verdict": inconclusive}
    return out


class Scores:
    """Per-prompt scores by (model, task, strategy, noise, seed); the base model's serve
    every noise level and seed."""

    def __init__(self, results: dict[str, Any]):
        self.cells: dict[tuple, list] = {}
        self.seeds: dict[tuple, set[int]] = defaultdict(set)
        for c in results["cells"]:
            for task, ev in c["eval"].items():
                if ev.get("per_prompt"):
                    self.cells[(c["model"], task, c["strategy"], c["noise"], c["seed"])] = ev[
                        "per_prompt"
                    ]
                    self.seeds[(c["model"], task, c["strategy"], c["noise"])].add(c["seed"])
        self.base = {
            (m, t): ev["per_prompt"]
            for m, tasks in results["base"].items()
            for t, ev in tasks.items()
            if ev.get("per_prompt")
        }

    def has(self, model: str, task: str, strategy: str, noise: float) -> bool:
        if strategy == BASE:
            return (model, task) in self.base
        return bool(self.seeds.get((model, task, strategy, noise)))

    def table(self, model: str, task: str, strategy: str, noise: float, seeds: list[int]):
        """seeds x prompts, in points, NaN where unscorable."""
        rows = [
            self.base[(model, task)]
            if strategy == BASE
            else self.cells[(model, task, strategy, noise, s)]
            for s in seeds
        ]
        return 100 * np.array([[np.nan if x is None else x for x in r] for r in rows], float)

    def common_seeds(self, model: str, task: str, arms: list[str], noise: float) -> list[int]:
        sets = [self.seeds[(model, task, a, noise)] for a in arms if a != BASE]
        return sorted(set.intersection(*sets)) if sets else [0]


def _record(d: np.ndarray, n_boot: int, effect: float) -> dict[str, Any]:
    """Δ, its hierarchical bootstrap interval and power for one paired table."""
    keep = ~np.isnan(d).any(axis=0)
    d = d[:, keep]
    mean, lo, hi = hierarchical_bootstrap(d, n_boot)
    p = power(d)
    return {
        "delta_points": mean,
        "ci95_points": [lo, hi],
        "se_points": p.se,
        "mde_points": p.mde,
        "n_seeds": p.n_seeds,
        "n_prompts": p.n_prompts,
        "n_prompts_dropped": int((~keep).sum()),
        "seed_variance_measured": p.seed_variance_measured,
        "var_points2": {"seed": p.var_seed, "prompt": p.var_prompt, "resid": p.var_resid},
        "seeds_needed": seeds_needed(p, effect),
        "verdict": verdict(lo, hi, p.mde, effect),
    }


def compare(scores: Scores, key: tuple, n_boot: int, effect: float) -> dict[str, Any] | None:
    """strategy - reference on (model, task) at one noise level; None if a cell is missing."""
    model, task, strategy, reference, noise = key
    if not (scores.has(model, task, strategy, noise) and scores.has(model, task, reference, noise)):
        return None
    seeds = scores.common_seeds(model, task, [strategy, reference], noise)
    if not seeds:
        return None
    a = scores.table(model, task, strategy, noise, seeds)
    b = scores.table(model, task, reference, noise, seeds)
    if a.shape != b.shape:
        raise ValueError(f"{model}/{task}: {strategy} and {reference} scored different prompts")
    head = {"model": model, "task": task, "noise": noise}
    return {**head, "strategy": strategy, "reference": reference, "seeds": seeds} | _record(
        a - b, n_boot, effect
    )


def level(scores: Scores, model: str, task: str, strategy: str, noise: float, n_boot: int):
    """Mean per-prompt score of one strategy at one noise level, with its interval."""
    seeds = scores.common_seeds(model, task, [strategy], noise)
    y = scores.table(model, task, strategy, noise, seeds)
    y = y[:, ~np.isnan(y).any(axis=0)]
    if y.size == 0:
        return None
    mean, lo, hi = hierarchical_bootstrap(y, n_boot)
    return {"mean_points": mean, "ci95_points": [lo, hi], "n_seeds": len(seeds)}


def analyze(results: dict[str, Any], n_boot: int = 1000) -> dict[str, Any]:
    """Comparisons vs the reference and vs the base model, the primary verdicts, the
    robustness comparisons and the power per task (results.json's `analysis` and `power`)."""
    cfg = results["config"]
    s = settings(cfg)
    prim, effect = s["primary"], s["effect_of_interest"]
    scores = Scores(results)
    models = list(dict.fromkeys(c["model"] for c in results["cells"]))
    strategies = list(dict.fromkeys(c["strategy"] for c in results["cells"]))
    noises = sorted({c["noise"] for c in results["cells"]})
    tasks = list(dict.fromkeys([*(k[1] for k in scores.cells), *(t for _, t in scores.base)]))
    ref = prim["reference"]

    def run(strategy: str, reference: str) -> list[dict[str, Any]]:
        found = []
        for m in models:
            for t in tasks:
                for p in noises:
                    r = compare(scores, (m, t, strategy, reference, p), n_boot, effect)
                    found += [r] if r else []
        return found

    status = learning_status(results, s["learning_threshold"])

    def gated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [gate(r, status) for r in rows]

    comparisons = gated([r for st in strategies if st != ref for r in run(st, ref)])
    if prim["strategy"] not in strategies:  # e.g. base as the primary strategy
        comparisons += gated(run(prim["strategy"], ref))
    primary = [r for r in comparisons if r["strategy"] == prim["strategy"]]
    verdicts = []
    for m in models:
        for p in noises:
            found = [
                r for r in primary if (r["model"], r["task"], r["noise"]) == (m, prim["task"], p)
            ]
            missing = [
                name for name in (prim["strategy"], ref) if not scores.has(m, prim["task"], name, p)
            ]
            verdicts.append(
                found[0]
                if found
                else {"model": m, "task": prim["task"], "noise": p, "missing": missing}
            )
    # Did training help at all? Each strategy against the untrained model, paired by prompt
    # as above; base's one evaluation stands in for every seed, so only the strategy's seeds
    # vary. With base as the reference these are the comparisons already made.
    vs_base = comparisons if ref == BASE else gated([r for st in strategies for r in run(st, BASE)])
    # every strategy against the placebo (no preference left in its pairs), where the grid has it
    placebo = s["placebo"]
    vs_placebo = gated([r for st in strategies if st not in (placebo, ref)
                        for r in run(st, placebo)] if placebo in strategies else [])  # fmt: skip
    robustness = {
        "variants": s["robust"],
        "comparisons": gated([r for v in s["robust"] for r in run(prim["strategy"], v)]),
    }
    levels = [
        {"model": m, "task": t, "strategy": st, "noise": p, **lv}
        for m in models
        for t in tasks
        for st in strategies
        for p in noises
        if scores.has(m, t, st, p) and (lv := level(scores, m, t, st, p, n_boot))
    ]
    levels += [  # the untrained model: one evaluation, no noise level (base-only too)
        {"model": m, "task": t, "strategy": BASE, "noise": None, **lv}
        for m in dict.fromkeys([*models, *results["base"]])
        for t in tasks
        if scores.has(m, t, BASE, None) and (lv := level(scores, m, t, BASE, None, n_boot))
    ]
    return {
        "settings": s,
        "noise": noises,
        "verdicts": verdicts,
        "comparisons": comparisons,
        "vs_base": vs_base,
        "vs_placebo": vs_placebo,
        "learning": [
            {"model": m, "strategy": st, "noise": p, **v} for (m, st, p), v in status.items()
        ],  # fmt: skip
        "robustness": robustness,
        "levels": levels,
        "power": power_by_task(comparisons, tasks, prim),
    }


def power_by_task(comparisons: list[dict], tasks: list[str], prim: dict) -> dict[str, Any]:
    """Per task, the largest MDE of the primary comparison over noise levels and models
    (every comparison vs the reference where the primary strategy is not in the grid)."""
    out = {}
    for task in tasks:
        rows = [r for r in comparisons if r["task"] == task]
        chosen = [r for r in rows if r["strategy"] == prim["strategy"]] or rows
        mdes = [r["mde_points"] for r in chosen if r["mde_points"] is not None]
        if not chosen:
            continue
        out[task] = {
            "mde_points": max(mdes) if mdes else None,
            "n_prompts": min(r["n_prompts"] for r in chosen),
            "n_seeds": min(r["n_seeds"] for r in chosen),
            "primary": task == prim["task"],
            "seed_variance_measured": (
                measured := all(r["seed_variance_measured"] for r in chosen)
            ),
            "note": None if measured else ONE_SEED_NOTE,
            "comparison": sorted({f"{r['strategy']} - {r['reference']}" for r in chosen}),
            "by_noise": {
                f"{p:g}": max(_mde(r) for r in chosen if r["noise"] == p)
                for p in sorted({r["noise"] for r in chosen})
            },
        }
    return out


def _mde(row: dict[str, Any]) -> float:
    """A comparison's MDE in points; inf where none could be computed (0 stays 0)."""
    return np.inf if row["mde_points"] is None else row["mde_points"]


# a model's nominal size from its name: "smollm2-135m", "qwen2.5-coder-0.5b", "Llama-3.1-8B"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([mb])(?![a-z])", re.IGNORECASE)


def nominal_size(model: str) -> tuple[float | None, str]:
    """(parameters, family) as a model's name states them: the last "<number>m|b" token
    (None where the name has none) and the name without it (the family, for the confound
    of size with family)."""
    name = model.rsplit("/", 1)[-1]  # a hub id's repository name
    found = list(_SIZE.finditer(name))
    if not found:
        return None, model
    m = found[-1]
    params = float(m.group(1)) * (1e6 if m.group(2).lower() == "m" else 1e9)
    family = re.sub(r"([-_.])[-_.]+", r"\1", name[: m.start()] + name[m.end() :]).strip("-_. ")
    return params, family


def size_axis(cfg: dict[str, Any], analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per model of the grid's ladder (trained, then base-only), in config order: its
    nominal size and family, the base model's level on every task, and the primary
    comparison at each noise level (gated, as in `verdicts`). Empty below two models."""
    grid = cfg["grid"]
    models = list(dict.fromkeys([*grid["model"], *(grid.get("base_only") or [])]))
    if len(models) < 2:
        return []
    rows = []
    for m in models:
        params, family = nominal_size(m)
        base = {lv["task"]: lv for lv in analysis["levels"]
                if lv["model"] == m and lv["strategy"] == BASE}  # fmt: skip
        primary = [v for v in analysis["verdicts"] if v["model"] == m and "missing" not in v]
        rows.append({"model": m, "params": params, "family": family, "base": base,
                     "primary": primary, "trained": m in grid["model"]})  # fmt: skip
    return rows
