"""The ablation report: markdown tables, PNG plots and results.json, from collected results.

Input (`results`): {"config", "provenance", "base": {model: {task: eval}}, "cells": [
{"model", "strategy", "noise", "seed", "pairs": stats, "train": {"log": [...]},
"eval": {task: eval}}]}, where eval = {"metrics": {...}, "per_prompt": [score|None]}.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rpo_bench.ablate.config import BASE
from rpo_bench.ablate.evaluate import SINGLE_TURN
from rpo_bench.ablate.stats import paired_bootstrap, seed_interval
from rpo_bench.evaluate import decoding
from rpo_bench.evaluate.metrics import METRICS
from rpo_bench.files import write_atomic

REFERENCE = "dpo_count"
COLUMNS = ("overall", *METRICS)
SHORT = {
    "overall": "overall",
    "prompt_level_strict_acc": "prompt strict",
    "inst_level_strict_acc": "inst strict",
    "prompt_level_loose_acc": "prompt loose",
    "inst_level_loose_acc": "inst loose",
}
PAPER_TABLE = """\
| model (paper, Table 1) | Sys avg | MIF avg |
|---|---|---|
| Llama-3.1-8B-Instruct | 52.12 | 66.56 |
| 8B + DPO | 62.53 | 66.66 |
| 8B + RPO | 67.12 | 69.18 |
| Qwen2.5-7B-Instruct | 53.59 | 63.20 |
| 7B + DPO | 59.49 | 63.11 |
| 7B + RPO | 63.06 | 66.27 |
| Llama-3.1-70B-Instruct | 63.87 | 75.57 |
| 70B + DPO | 70.64 | 75.92 |
| 70B + RPO | 77.83 | 78.15 |
"""


def _fmt(mean: float, half: float | None, scale: float = 100.0) -> str:
    if half is None:
        return f"{mean * scale:.1f}"
    return f"{mean * scale:.1f} ± {half * scale:.1f}"


def _per_prompt_mean(evals: list[dict[str, Any]]) -> np.ndarray:
    """Per-prompt scores averaged over seeds (NaN where unscorable)."""
    rows = [[np.nan if s is None else s for s in e["per_prompt"]] for e in evals]
    return np.nanmean(np.array(rows, dtype=float), axis=0)


def summarize(results: dict[str, Any], n_boot: int = 1000) -> dict[str, Any]:
    """Per (model, task, strategy, noise): mean ± seed CI per metric, and the paired
    bootstrap delta of `overall` vs dpo_count at the same noise level."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for cell in results["cells"]:
        for task, ev in cell["eval"].items():
            groups[(cell["model"], task, cell["strategy"], cell["noise"])].append(ev)
    for model, tasks in results["base"].items():
        for task, ev in tasks.items():
            groups[(model, task, BASE, None)].append(ev)
    table: dict[str, Any] = {}
    for (model, task, strategy, noise), evals in groups.items():
        entry: dict[str, Any] = {"n_seeds": len(evals)}
        for m in _columns(evals[0]["metrics"]):
            mean, half = seed_interval([e["metrics"][m] for e in evals])
            entry[m] = {"mean": mean, "ci95_half_seeds": half}
        ref = groups.get((model, task, REFERENCE, noise))
        if ref and strategy != REFERENCE and evals[0]["per_prompt"]:
            a, b = _per_prompt_mean(evals), _per_prompt_mean(ref)
            ok = ~(np.isnan(a) | np.isnan(b))
            delta, lo, hi = paired_bootstrap(a[ok], b[ok], n_boot)
            entry["delta_overall_vs_dpo_count"] = {"mean": delta, "ci95": [lo, hi]}
        table.setdefault(model, {}).setdefault(task, {})[f"{strategy}|{noise}"] = entry
    return table


def _columns(metrics: dict[str, Any]) -> list[str]:
    """IFEval's metrics and overall where present, else whatever the task reports."""
    return list(COLUMNS) if all(c in metrics for c in COLUMNS) else sorted(metrics)


def _task_table(entries: dict[str, Any]) -> list[str]:
    columns = [
        c for c in next(iter(entries.values())) if c != "n_seeds" and not c.startswith("delta")
    ]
    head = ["strategy", "noise p", *(SHORT.get(c, c) for c in columns), f"Δ overall vs {REFERENCE}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, e in entries.items():
        strategy, noise = key.split("|")
        cells = [
            _fmt(e[c]["mean"], e[c]["ci95_half_seeds"], 100.0 if c in COLUMNS else 1.0)
            for c in columns
        ]
        d = e.get("delta_overall_vs_dpo_count")
        delta = ""
        if d:
            lo, hi = d["ci95"]
            mark = " *" if lo > 0 or hi < 0 else ""
            delta = f"{d['mean'] * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}]{mark}"
        p = "-" if noise == "None" else noise
        lines.append("| " + " | ".join([strategy, p, *cells, delta]) + " |")
    return lines


def _data_table(results: dict[str, Any]) -> list[str]:
    head = ["model", "strategy", "noise p", "seed", "pairs", "pairs / sampled response",
            "turns with a pair (share)", "mean margin", "pair noise", "pair inversion"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def num(x: float | None, digits: int = 2) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    for c in results["cells"]:
        s = c["pairs"]
        row = [c["model"], c["strategy"], f"{c['noise']:g}", str(c["seed"]), str(s["pairs"]),
               num(s["pairs_per_response"]), num(s["share_turns_with_pair"]),
               num(s["mean_margin"]), num(s.get("pair_noise"), 3),
               num(s.get("pair_inversion"), 3)]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _plots(results: dict[str, Any], table: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    # Plots compare `overall` (IFEval-style tasks); judged benchmarks appear in tables only.
    table = {
        m: {t: e for t, e in tasks.items() if "overall" in next(iter(e.values()))}
        for m, tasks in table.items()
    }
    table = {m: t for m, t in table.items() if t}
    for model, tasks in table.items():
        safe = model.replace("/", "_")
        fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.6), squeeze=False)
        for ax, (task, entries) in zip(axes[0], tasks.items(), strict=True):
            noises = sorted({k.split("|")[1] for k in entries if not k.endswith("|None")})
            strategies = list(dict.fromkeys(k.split("|")[0] for k in entries))
            width = 0.8 / max(len(noises), 1)
            for j, noise in enumerate(noises):
                xs, ys, es = [], [], []
                for i, s in enumerate(strategies):
                    e = entries.get(f"{s}|{noise}") or entries.get(f"{s}|None")
                    if e:
                        xs.append(i + j * width)
                        ys.append(100 * e["overall"]["mean"])
                        es.append(100 * (e["overall"]["ci95_half_seeds"] or 0))
                ax.bar(xs, ys, width, yerr=es, capsize=3, label=f"p={noise}")
            ax.set_xticks([i + width * (len(noises) - 1) / 2 for i in range(len(strategies))])
            ax.set_xticklabels(strategies, rotation=30, ha="right")
            ax.set_title(task)
            ax.set_ylabel("overall (%)")
            ax.legend(fontsize=7)
        fig.tight_layout()
        made.append(_save(fig, out / f"strategies_{safe}.png"))

        fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.4), squeeze=False)
        for ax, (task, entries) in zip(axes[0], tasks.items(), strict=True):
            by_strategy: dict[str, list] = defaultdict(list)
            for k, e in entries.items():
                s, noise = k.split("|")
                if noise != "None":
                    by_strategy[s].append((float(noise), 100 * e["overall"]["mean"]))
            for s, pts in by_strategy.items():
                pts.sort()
                ax.plot(*zip(*pts, strict=True), marker="o", label=s)
            ax.set_xlabel("judge noise p")
            ax.set_ylabel("overall (%)")
            ax.set_title(task)
            ax.legend(fontsize=7)
        fig.tight_layout()
        made.append(_save(fig, out / f"noise_{safe}.png"))

    models = list(table)
    if len(models) > 1 and all(table[m] for m in models):
        fig, ax = plt.subplots(figsize=(5, 3.4))
        task = next(iter(table[models[0]]))
        strategies = {k.split("|")[0] for k in table[models[0]][task]}
        for s in sorted(strategies):
            ys = [
                100
                * np.mean(
                    [
                        e["overall"]["mean"]
                        for k, e in table[m][task].items()
                        if k.startswith(s + "|")
                    ]
                )
                for m in models
            ]
            ax.plot(models, ys, marker="o", label=s)
        ax.set_ylabel(f"{task} overall (%)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        made.append(_save(fig, out / "model_size.png"))

    fig, ax = plt.subplots(figsize=(5, 3.4))
    hist: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for c in results["cells"]:
        for g, count in c["pairs"].get("margin_histogram", {}).items():
            hist[c["strategy"]][int(g)] += count
    width = 0.8 / max(len(hist), 1)
    for j, (s, h) in enumerate(sorted(hist.items())):
        offset = (j - (len(hist) - 1) / 2) * width  # each g's bars centred on g
        ax.bar([g + offset for g in h], list(h.values()), width, label=s)
    ax.set_xticks(sorted({g for h in hist.values() for g in h}))
    ax.set_xlabel("margin g (differing constraints)")
    ax.set_ylabel("pairs (all cells)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    made.append(_save(fig, out / "margins.png"))

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for c in results["cells"]:
        log = c["train"].get("log", [])
        if c["seed"] != results["cells"][0]["seed"] or not log:
            continue
        label = f"{c['strategy']} p={c['noise']:g}"
        steps = [r["step"] for r in log]
        axes[0].plot(steps, [r["loss"] for r in log], label=label)
        axes[1].plot(steps, [r["reward_margin"] for r in log], label=label)
    axes[0].set_title("training loss")
    axes[1].set_title("reward margin (chosen - rejected)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=6)
    fig.tight_layout()
    made.append(_save(fig, out / "training.png"))
    return made


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path.name


def _decoding_line(e: dict[str, Any], task: str, model: str) -> str:
    """How the task's replies were decoded, next to its numbers."""
    if task in SINGLE_TURN or task == "heldout":
        official = decoding.source(task, "official")
        return f"Decoding: greedy, at most {e['max_new_tokens']} new tokens (rollout engine)" + (
            f"; official protocol: {official}." if official else "."
        )
    chosen = decoding.settings(task, e.get("decoding", "official"), model)
    return f"Decoding: {chosen['protocol']} ({chosen['source']}): `{chosen['generation_kwargs']}`."


def write(results: dict[str, Any], out: str | Path) -> Path:
    """report.md, the PNGs and results.json under `out`; returns the markdown's path."""
    out = Path(out)
    table = summarize(results, results["config"]["eval"]["bootstrap"])
    results = {**results, "summary": table}
    pngs = _plots(results, table, out)
    cfg = results["config"]
    md = [f"# Ablation `{cfg['name']}`", "", cfg.get("description", "").strip(), ""]
    md += [
        "Each cell: sample once per model, judge (with noise p), build pairs with the "
        "strategy, train, evaluate greedily. Metrics in percent: mean ± 95% t-interval "
        f"over seeds; Δ = paired bootstrap over prompts ({cfg['eval']['bootstrap']} "
        f"resamples) of the per-prompt overall score (averaged over seeds) vs `{REFERENCE}` "
        "at the same p; * marks an interval that excludes 0.",
        "",
    ]
    for model, tasks in table.items():
        for task, entries in tasks.items():
            md += [f"## {task} ({model})", "", _decoding_line(cfg["eval"], task, model), ""]
            md += [*_task_table(entries), ""]
    stale = results.get("provenance", {}).get("stale_stages")
    if stale:
        md += ["## Stale stages", "",
               "Reused with --reuse-stale although the code that computes them has changed "
               "since: " + ", ".join(f"`{s}`" for s in stale) + ".", ""]  # fmt: skip
    md += ["## Pairs", "", *_data_table(results), ""]
    md += ["## Plots", ""] + [f"![{p}]({p})" for p in pngs] + [""]
    md += [
        "## Next to the paper",
        "",
        "The paper (Table 1) reports RPO over DPO on 8B-70B models with GPT-4o-judged "
        "SysBench and Multi-IF. This study runs a 135M model on verifiable constraints on a "
        "CPU; absolute numbers are not comparable, only the direction of RPO vs DPO is.",
        "",
        PAPER_TABLE,
    ]
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
        "",
        "Config:",
        "",
        "```json",
        json.dumps(cfg, indent=2),
        "```",
        "",
    ]
    write_atomic(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    path = out / "report.md"
    write_atomic(path, "\n".join(md))
    return path
