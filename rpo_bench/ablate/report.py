"""The ablation report: markdown tables, PNG plots and results.json, from collected results.

It opens with the verdict on the primary endpoint (config `analysis`), then per-task tables,
power, reversal vs a noise-robust loss, pairs and plots (rpo_bench.ablate.analysis,
.sections, .plots).

Input (`results`): {"config", "provenance", "base": {model: {task: eval}}, "cells": [
{"model", "strategy", "noise", "seed", "min_margin"?, "margin_mode"?, "pairs": stats,
"train": {"log": [...]}, "eval": {task: eval}}]}, where eval = {"metrics": {...},
"per_prompt": [score|None]}; the margin axes appear only where the grid has them, and
tables are then per model and margin setting (rpo_bench.ablate.groups).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from rpo_bench import faults
from rpo_bench.ablate import analysis as analysis_mod
from rpo_bench.ablate import sections
from rpo_bench.ablate.config import BASE, OPTIONAL_AXES, axis_values
from rpo_bench.ablate.groups import by_group
from rpo_bench.ablate.plots import PLOT_NAMES, plot_all
from rpo_bench.ablate.stats import seed_interval
from rpo_bench.evaluate import decoding
from rpo_bench.evaluate.metrics import METRICS
from rpo_bench.evaluate.tasks import TASKS
from rpo_bench.files import atomic_folder, write_atomic

COLUMNS = ("overall", *METRICS)
# the conditionality index (J) and its two pass rates: shares, shown in points like COLUMNS
CONDITIONALITY = ("conditionality", "pass_original", "pass_reversed")
IN_POINTS = (*COLUMNS, *CONDITIONALITY)
# summary keys that are no metric
ENTRY_EXTRAS = ("n_seeds", "score", "delta_vs_reference", "delta_vs_base")
DELTA_KEYS = ("reference", "delta_points", "ci95_points", "mde_points", "verdict", "learning")
SHORT = {
    "overall": "overall",
    "prompt_level_strict_acc": "prompt strict",
    "inst_level_strict_acc": "inst strict",
    "prompt_level_loose_acc": "prompt loose",
    "inst_level_loose_acc": "inst loose",
    "conditionality": "J",
    "pass_original": "pass c | shown c",
    "pass_reversed": "pass ¬c | shown ¬c",
}


def summarize(results: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
    """Per (model, task, strategy, noise): each metric's mean over seeds (with its t-interval,
    kept in results.json only: two seeds make it meaningless), the per-prompt score with its
    hierarchical bootstrap interval, and Δ vs the reference and vs base with interval and
    MDE (points)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for cell in results["cells"]:
        for task, ev in cell["eval"].items():
            groups[(cell["model"], task, cell["strategy"], cell["noise"])].append(ev)
    for model, tasks in results["base"].items():
        for task, ev in tasks.items():
            groups[(model, task, BASE, None)].append(ev)
    levels = {(r["model"], r["task"], r["strategy"], r["noise"]): r for r in analysis["levels"]}
    ref = analysis["settings"]["primary"]["reference"]
    deltas = {
        "delta_vs_reference": _by_cell(r for r in analysis["comparisons"] if r["reference"] == ref),
        "delta_vs_base": _by_cell(analysis["vs_base"]),
    }
    table: dict[str, Any] = {}
    for key, evals in groups.items():
        model, task, strategy, noise = key
        entry: dict[str, Any] = {"n_seeds": len(evals)}
        for m in _columns(evals[0]["metrics"]):
            mean, half = seed_interval([e["metrics"][m] for e in evals])
            entry[m] = {"mean": mean, "ci95_half_seeds": half}
        if key in levels:
            lv = levels[key]
            entry["score"] = {k: lv[k] for k in ("mean_points", "ci95_points", "n_seeds")}
        for name, found in deltas.items():
            if key in found:
                entry[name] = {k: found[key][k] for k in DELTA_KEYS}
        table.setdefault(model, {}).setdefault(task, {})[f"{strategy}|{noise}"] = entry
    return table


def _by_cell(rows: Iterable[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    return {(r["model"], r["task"], r["strategy"], r["noise"]): r for r in rows}


def _columns(metrics: dict[str, Any]) -> list[str]:
    """IFEval's metrics and overall where present, else whatever the task reports."""
    return list(COLUMNS) if all(c in metrics for c in COLUMNS) else sorted(metrics)


def _task_table(entries: dict[str, Any], reference: str) -> list[str]:
    columns = [c for c in next(iter(entries.values())) if c not in ENTRY_EXTRAS]
    # with base as the reference, Δ vs base is already the reference's column
    vs_base = [] if reference == BASE else [f"Δ score vs {BASE} [95% CI]"]
    head = ["strategy", "noise p", *(SHORT.get(c, c) for c in columns), "score [95% CI]",
            *vs_base, f"Δ score vs {reference} [95% CI]", "MDE"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, e in entries.items():
        strategy, noise = key.split("|")
        cells = [f"{e[c]['mean'] * (100.0 if c in IN_POINTS else 1.0):.1f}" for c in columns]
        score = ""
        if "score" in e:
            lo, hi = e["score"]["ci95_points"]
            score = f"{e['score']['mean_points']:.1f} [{lo:.1f}, {hi:.1f}]"
        d = e.get("delta_vs_reference")
        mde = "" if not d or d["mde_points"] is None else f"{d['mde_points']:.1f}"
        base = [_delta_cell(e.get("delta_vs_base"))] if vs_base else []
        p = "-" if noise == "None" else noise
        row = [strategy, p, *cells, score, *base, _delta_cell(d), mde]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _delta_cell(d: dict[str, Any] | None) -> str:
    """Δ [95% CI], starred where the interval excludes 0 (and the gate let it stand), marked
    where a side did not learn; empty without a comparison."""
    if not d:
        return ""
    unlearned = sections.unlearned(d)
    return (sections.interval(d) + (" *" if d["verdict"] == analysis_mod.DETECTED else "")
            + (f" ({', '.join(unlearned)} did not learn)" if unlearned else ""))  # fmt: skip


BASE_DELTA = (
    f"Δ vs `{BASE}` = the same paired difference against the untrained model, whose one "
    "evaluation stands in for every seed (the interval resamples the prompts and the "
    "strategy's seeds); "
)
# One line per column the table does not explain itself (docs/report.md, Statistics).
PAIRS_LEGEND = [
    "- `examples`: the training examples built (pairs; single responses for SFT and KTO); "
    "`examples / sampled response`: per sampled response; `turns used (share)`: share of "
    "sampled turns yielding at least one.",
    "- `mean margin`: constraints separating a pair's chosen from its rejected response, as "
    "judged (the g of the margin term), mean over pairs.",
    "- `label noise`: under the true verdicts (the judge's, before noise p is injected), the "
    "share of examples that teach something false: a pair whose chosen response fails a "
    "constraint of its own prompt, an SFT response that fails one, a wrong KTO label. Not 0 "
    "at p=0 for count-ranked pairs (`dpo_count`): their chosen is only the better response "
    "and usually still fails a constraint of the original prompt, which `rpo` rewrites so "
    "that its chosen passes every one.",
    "- `pair inversion`: the share of pairs whose chosen fails, under the true verdicts, at "
    "least as many of its prompt's constraints as the rejected: no true preference left.",
]


def _data_table(results: dict[str, Any]) -> list[str]:
    # Pairs and single-response examples (SFT, KTO) side by side (PAIRS_LEGEND): their
    # stats name the shared columns examples_* and example_noise, older pair sets pairs_*.
    axes = [a for a in OPTIONAL_AXES if any(a in axis_values(c) for c in results["cells"])]
    head = ["model", "strategy", "kind", "noise p", "seed", *axes, "examples",
            "examples / sampled response", "turns used (share)", "mean margin", "label noise",
            "pair inversion"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def num(x: float | None, digits: int = 2) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    for c in results["cells"]:
        s = c["pairs"]
        row = [c["model"], c["strategy"], s.get("kind", "preference"), f"{c['noise']:g}",
               str(c["seed"]), *(str(c.get(a, "-")) for a in axes),
               str(s.get("examples", s.get("pairs"))),
               num(s.get("examples_per_response", s.get("pairs_per_response"))),
               num(s.get("share_turns_used", s.get("share_turns_with_pair"))),
               num(s.get("mean_margin")), num(s.get("example_noise", s.get("pair_noise")), 3),
               num(s.get("pair_inversion"), 3)]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _decoding_line(e: dict[str, Any], task: str, model: str) -> str:
    """How the task's replies were decoded, next to its numbers."""
    if TASKS[task].engine:
        official = decoding.source(task, "official")
        return f"Decoding: greedy, at most {e['max_new_tokens']} new tokens (rollout engine)" + (
            f"; official protocol: {official}." if official else "."
        )
    chosen = decoding.settings(task, e.get("decoding", "official"), model)
    return f"Decoding: {chosen['protocol']} ({chosen['source']}): `{chosen['generation_kwargs']}`."


def write(results: dict[str, Any], out: str | Path) -> Path:
    """report.md, the PNGs and results.json under `out`; returns the markdown's path.

    The folder is the report alone and is replaced whole: the files are written beside it
    and swapped in together, so a crash never leaves a new results.json beside an old
    report.md."""
    out = Path(out)
    check_folder(out)
    with atomic_folder(out) as folder:
        _write(results, folder)
        faults.reach("report")
    return out / "report.md"


# What a run collected (`Runner.run`); results.json adds what the report derives from it.
COLLECTED = ("config", "base", "cells", "judging", "provenance")


def rewrite(results_json: str | Path, out: str | Path) -> Path:
    """A report written again from a results.json: the numbers it holds, this code's
    analysis and text. `python -m rpo_bench.ablate.report RESULTS_JSON --out FOLDER`."""
    results = json.loads(Path(results_json).read_text())
    return write({k: results[k] for k in COLLECTED if k in results}, out)


def check_folder(out: Path) -> None:
    """A report folder is replaced whole, so it may hold nothing but a report's files."""
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if not _ours(p.name))
        if other:
            raise ValueError(
                f"{out}: holds files that are no report's ({', '.join(other[:5])}); a report "
                "folder is replaced whole, so give --out a folder of its own"
            )


def _ours(name: str) -> bool:
    """A file a report writes, by its name: report.md, results.json, one of its plots."""
    return name in ("report.md", "results.json") or any(fnmatch(name, p) for p in PLOT_NAMES)


def _write(results: dict[str, Any], out: Path) -> None:
    cfg = results["config"]
    grouped = by_group(results)  # per model and margin setting; results.json keeps the cells
    analysis = analysis_mod.analyze(grouped, cfg["eval"]["bootstrap"])
    table = summarize(grouped, analysis)
    power = analysis.pop("power")
    learning = sections.learning_rows(results["cells"])
    results = {**results, "summary": table, "analysis": analysis, "power": power,
               "learning": learning}  # fmt: skip
    pngs = plot_all({**results, "cells": grouped["cells"]}, table, analysis, out)
    ref = analysis["settings"]["primary"]["reference"]
    md = [f"# Ablation `{cfg['name']}`", ""]
    md += sections.verdict_paragraph(analysis)  # the report opens with its answer
    md += [cfg.get("description", "").strip(), ""]
    md += [
        "Each cell: sample once per model, judge (with noise p), build pairs with the "
        "strategy, train, evaluate greedily. Metrics in percent, mean over seeds. `score`: "
        "a prompt's four metrics averaged (the unit every interval resamples; instruction "
        "levels weigh prompts equally, so it can differ a little from `overall`), in points "
        "with a 95% hierarchical bootstrap interval "
        f"({cfg['eval']['bootstrap']} resamples of seeds and, crossed with them, prompts). "
        f"Δ = paired difference vs `{ref}` at the same p (same prompts, same seeds' noise "
        "flips); MDE = its minimum detectable effect (see Power); "
        + ("" if ref == BASE else BASE_DELTA)
        + "* marks an interval that excludes 0. Every statistic is defined in the project's "
        "docs/report.md (Statistics in the report).",
        "",
    ]
    for name, tasks in table.items():
        model = grouped["group_models"].get(name, name)
        for task, entries in tasks.items():
            md += [f"## {task} ({name})", "", _decoding_line(cfg["eval"], task, model), ""]
            md += [*_task_table(entries, ref), ""]
    md += sections.power_section({**analysis, "power": power})
    md += sections.robustness_section(analysis, cfg)
    stale = results.get("provenance", {}).get("stale_stages")
    if stale:
        md += ["## Stale stages", "",
               "Reused with --reuse-stale although the code that computes them has changed "
               "since: " + ", ".join(f"`{s}`" for s in stale) + ".", ""]  # fmt: skip
    md += sections.learning_section(learning)
    md += ["## Pairs", "", *PAIRS_LEGEND, "", *_data_table(results), ""]
    md += ["## Plots", ""] + [f"![{p}]({p})" for p in pngs] + [""]
    md += sections.size_section(cfg, analysis)
    md += sections.paper_section(analysis, cfg)
    prov = results["provenance"]
    md += [
        "## Provenance",
        "",
        f"- git commit: `{prov['git_commit']}`",
        f"- seeds: {cfg['grid']['seed']} (data seed {cfg['data']['seed']}, "
        f"sampling seed {cfg['sampling']['seed']})",
        f"- compute time: {sum(prov['stage_seconds'].values()):.0f} s over all stages ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in prov["stage_seconds"].items())
        + f"); this invocation {prov['wall_seconds']:.0f} s, reusing finished stages",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()),
        *(
            f"- judging ({m}, {c['judge']}): {c['responses']} responses, {c['judged']} judged "
            f"({c['retried']} after a retry), {c['unjudged']} unjudged (their turns get no "
            f"pairs), {c['attempts']} judge attempts"
            for m, c in results.get("judging", {}).items()
        ),
        "",
        "Config:",
        "",
        "```json",
        json.dumps(cfg, indent=2),
        "```",
        "",
    ]
    write_atomic(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    write_atomic(out / "report.md", "\n".join(md))


if __name__ == "__main__":
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m rpo_bench.ablate.report",
                                     description=rewrite.__doc__)  # fmt: skip
    parser.add_argument("results", help="a report's results.json")
    parser.add_argument("--out", required=True, help="the report folder to (re)write")
    args = parser.parse_args()
    try:
        print(f"report: {rewrite(args.results, args.out)}")
    except (ValueError, OSError, KeyError) as err:
        print(f"python -m rpo_bench.ablate.report: error: {err}", file=sys.stderr)
        sys.exit(2)
