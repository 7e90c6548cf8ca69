"""The arithmetic of a study's power and time: what MDE other designs would reach, and how
long they would run, from one finished ablation's measured variances and stage times.

    python benchmarks/study_design.py reports/cpu_full/results.json [--effect 3]

For the primary comparison at each noise level it prints the measured variance components
(points², from `analysis.comparisons`) and, for designs of S seeds x P primary-task
prompts, the projected MDE (`stats.power`'s formula: 2.80 x sqrt(σ²_seed/S + σ²_prompt/P +
σ²_resid/(S·P))) and the projected compute time of the same grid. Time model, from the
run's own stage totals: sampling once; per cell the mean training time, plus the mean
evaluation time split over the generations it made (held-out turns and single-turn
prompts at equal cost each: an approximation), the held-out part scaled to P.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from rpo_bench.ablate.stats import Z_MDE  # z_0.975 + z_0.8, as the report uses


def mde(var: dict[str, float], seeds: int, prompts: int) -> float:
    v = var.get("seed") or 0.0
    return Z_MDE * math.sqrt(
        v / seeds
        + (var.get("prompt") or 0.0) / prompts
        + (var.get("resid") or 0.0) / (seeds * prompts)
    )


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--effect", type=float, default=None, help="default: the config's")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    cfg, analysis = results["config"], results["analysis"]
    effect = args.effect or analysis["settings"]["effect_of_interest"]
    prim = analysis["settings"]["primary"]
    cells = len(results["cells"])
    stages = results["provenance"]["stage_seconds"]
    trained = sum(1 for c in results["cells"] if c.get("train", {}).get("steps"))
    per_train = stages.get("train", 0.0) / max(trained, 1)
    per_eval = stages.get("eval", 0.0) / (cells + len(results["base"]))
    heldout_turns = cfg["data"]["heldout_conversations"] * cfg["data"]["turns"]
    single = sum(
        cfg["eval"]["limit"] or 0 for t in cfg["eval"]["tasks"] if t in ("ifeval_local", "ifbench")
    )
    per_generation = per_eval / (heldout_turns + single)
    grid = cfg["grid"]
    strategies, noises, seeds_now = len(grid["strategy"]), len(grid["noise"]), len(grid["seed"])
    print(f"study {cfg['name']}: {cells} cells, compute {sum(stages.values()) / 60:.0f} min "
          f"(sampling {stages.get('samples', 0) / 60:.1f} min, training {per_train:.0f} s and "
          f"evaluation {per_eval:.0f} s per cell)")  # fmt: skip
    print(f"primary: {prim['strategy']} - {prim['reference']} on {prim['task']}, effect of "
          f"interest {effect:g} points; P counts {prim['task']} prompts (turns)")  # fmt: skip
    for v in analysis["verdicts"]:
        if "missing" in v:
            continue
        (comp,) = [
            c for c in analysis["comparisons"]
            if (c["task"], c["noise"], c["strategy"], c["reference"], c["model"])
            == (prim["task"], v["noise"], prim["strategy"], prim["reference"], v["model"])
        ]  # fmt: skip
        var = comp["var_points2"]
        lo, hi = comp["ci95_points"]
        print(f"\np={v['noise']:g}: Δ {comp['delta_points']:+.1f} [{lo:+.1f}, {hi:+.1f}], "
              f"MDE {comp['mde_points']:.1f} at S={comp['n_seeds']} P={comp['n_prompts']}; "
              f"σ²: seed {_num(var.get('seed'))}, prompt {_num(var.get('prompt'))}, "
              f"resid {_num(var.get('resid'))}")  # fmt: skip
        floor = Z_MDE * math.sqrt((var.get("seed") or 0.0) / comp["n_seeds"])
        print(f"  seed term alone at S={comp['n_seeds']}: MDE {floor:.1f} (more prompts cannot "
              "go below it)")  # fmt: skip
        print("  | seeds | prompts | MDE | hours, this grid | hours, 2 strategies |")
        print("  |---|---|---|---|---|")
        for s in (seeds_now, 5, 10):
            for p in (comp["n_prompts"], 2 * comp["n_prompts"], 4 * comp["n_prompts"]):
                eval_s = per_eval + per_generation * (p - comp["n_prompts"])
                cell_s = per_train + eval_s
                hours = (stages.get("samples", 0) + cell_s * strategies * noises * s) / 3600
                two = (stages.get("samples", 0) + cell_s * 2 * noises * s) / 3600
                mark = " <=" if mde(var, s, p) <= effect else ""
                print(f"  | {s} | {p} | {mde(var, s, p):.1f}{mark} | {hours:.1f} | {two:.1f} |")


if __name__ == "__main__":
    main()
