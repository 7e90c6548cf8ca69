"""The report's PNGs. Scores and Δ are per-prompt scores in points with the hierarchical
bootstrap intervals of rpo_bench.ablate.analysis; judged benchmarks without them are left
to the tables."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from rpo_bench.ablate.analysis import INCONCLUSIVE, size_axis
from rpo_bench.ablate.config import BASE, axis_values

PAIR_STATS = (
    ("pairs_per_response", "pairs per sampled response"),
    ("pair_noise", "label noise (chosen fails a true check)"),
    ("pair_inversion", "pair inversion (no true preference)"),
)


# Every name a report's plot takes (`*`: a model's name): a report folder holds no other PNG.
PLOT_NAMES = ("strategies_*.png", "noise_*.png", "forest_*.png", "pairs.png", "model_size.png",
              "size_axis.png", "margins.png", "training.png", "learning.png",
              "dose.png")  # fmt: skip


def plot_all(
    results: dict[str, Any], table: dict[str, Any], analysis: dict[str, Any], out: Path
) -> list[str]:
    """Every plot the results allow; returns the file names written under `out`."""
    import matplotlib

    matplotlib.use("Agg")
    made = []
    levels = analysis["levels"]
    for model in dict.fromkeys(lv["model"] for lv in levels if lv["strategy"] != BASE):
        safe = re.sub(r"[^\w.-]+", "_", model)  # a group may name margin axes: "m, g=3"
        own = [lv for lv in levels if lv["model"] == model]
        made.append(_strategies(own, model, out / f"strategies_{safe}.png"))
        made.append(_noise(own, model, out / f"noise_{safe}.png"))
        rows = [r for r in analysis["comparisons"] if r["model"] == model]
        if rows:
            effect = analysis["settings"]["effect_of_interest"]
            made.append(_forest(rows, effect, model, out / f"forest_{safe}.png"))
    made += [_pairs(results, out / "pairs.png")]
    # across models only: with margin axes the table's groups are settings, not sizes
    grouped = any(axis_values(c) for c in results["cells"])
    size = None if grouped else _model_size(table, out / "model_size.png")
    axis = None if grouped else _size_axis(results["config"], analysis, out / "size_axis.png")
    made += [p for p in (size, axis) if p]
    made += [_margins(results, out / "margins.png"), _training(results, out / "training.png")]
    learned = _learning(results, out / "learning.png")
    dose = _dose(results, analysis, out / "dose.png")
    return made + [p for p in (learned, dose) if p]


def _by_task(levels: list[dict]) -> dict[str, list[dict]]:
    tasks: dict[str, list[dict]] = defaultdict(list)
    for lv in levels:
        tasks[lv["task"]].append(lv)
    return tasks


def _strategies(levels: list[dict], model: str, path: Path) -> str:
    import matplotlib.pyplot as plt

    tasks = _by_task(levels)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.8), squeeze=False)
    for ax, (task, rows) in zip(axes[0], tasks.items(), strict=True):
        strategies = list(dict.fromkeys(lv["strategy"] for lv in rows))
        noises = sorted({lv["noise"] for lv in rows if lv["noise"] is not None})
        width = 0.8 / max(len(noises), 1)
        for j, noise in enumerate(noises):
            xs, ys, err, colors = [], [], [[], []], []
            for i, s in enumerate(strategies):
                match = [lv for lv in rows if lv["strategy"] == s and lv["noise"] in (noise, None)]
                if match and (match[0]["noise"] is not None or j == 0):
                    lv = match[0]
                    lo, hi = lv["ci95_points"]
                    xs.append(i + j * width)
                    ys.append(lv["mean_points"])
                    err[0].append(lv["mean_points"] - lo)
                    err[1].append(hi - lv["mean_points"])
                    colors.append("0.6" if s == BASE else f"C{j}")
            ax.bar(xs, ys, width, yerr=err, capsize=3, color=colors, label=f"p={noise:g}")
        ax.set_xticks([i + width * (len(noises) - 1) / 2 for i in range(len(strategies))])
        ax.set_xticklabels(strategies, rotation=30, ha="right")
        ax.set_title(task)
        ax.set_ylabel("per-prompt score (points)")
    fig.suptitle(f"{model}: score by strategy (bars: 95% hierarchical bootstrap)", fontsize=9)
    _legend_right(fig, axes[0][0])
    return _save(fig, path)


def _noise(levels: list[dict], model: str, path: Path) -> str:
    """Small multiples (task rows x strategy columns): the bands overlap too much to share
    an axis, as the prompt-to-prompt spread dominates every level's interval."""
    import matplotlib.pyplot as plt

    tasks = _by_task(levels)
    strategies = list(dict.fromkeys(lv["strategy"] for lv in levels if lv["strategy"] != BASE))
    fig, axes = plt.subplots(
        len(tasks),
        len(strategies),
        figsize=(2.4 * len(strategies) + 0.6, 2.1 * len(tasks) + 0.5),
        squeeze=False,
        sharey="row",
        sharex=True,
    )
    for row, (task, rows) in zip(axes, tasks.items(), strict=True):
        base = [lv for lv in rows if lv["strategy"] == BASE]
        for k, (ax, s) in enumerate(zip(row, strategies, strict=True)):
            pts = sorted((lv for lv in rows if lv["strategy"] == s), key=lambda lv: lv["noise"])
            xs = [lv["noise"] for lv in pts]
            ax.fill_between(xs, [lv["ci95_points"][0] for lv in pts],
                            [lv["ci95_points"][1] for lv in pts], color=f"C{k}", alpha=0.2,
                            lw=0)  # fmt: skip
            ax.plot(xs, [lv["mean_points"] for lv in pts], marker="o", color=f"C{k}")
            if base:
                ax.axhline(base[0]["mean_points"], color="grey", ls=":", lw=1)
            ax.set_xticks(sorted({lv["noise"] for lv in levels if lv["noise"] is not None}))
            ax.tick_params(labelsize=7)
            if ax is row[0]:
                ax.set_ylabel(f"{task}\nscore (points)", fontsize=8)
            if task == next(iter(tasks)):
                ax.set_title(s, fontsize=9)
            if task == list(tasks)[-1]:
                ax.set_xlabel("judge noise p", fontsize=8)
    fig.suptitle(
        f"{model}: score vs noise (band: 95% hierarchical bootstrap; dotted: base)", fontsize=9
    )
    fig.tight_layout()
    return _save(fig, path)


def _forest(rows: list[dict], effect: float, model: str, path: Path) -> str:
    """Δ vs the reference per task and noise level; grey bar: ±MDE of that comparison."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    groups = list(dict.fromkeys((r["task"], r["noise"]) for r in rows))
    step = 1.0 / (len(strategies) + 1)
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.28 * len(rows) + 0.25 * len(groups)))
    ys, labels = [], []
    for g, (task, noise) in enumerate(groups):
        y0 = -g * 1.0
        ys.append(y0 - step * (len(strategies) - 1) / 2)
        labels.append(f"{task}\np={noise:g}")
        for k, s in enumerate(strategies):
            match = [r for r in rows if (r["task"], r["noise"], r["strategy"]) == (task, noise, s)]
            if not match:
                continue
            r, y = match[0], y0 - k * step
            if r["mde_points"] is not None:
                m = r["mde_points"]
                ax.barh(y, 2 * m, left=-m, height=step * 0.8, color="0.88", zorder=0)
            lo, hi = r["ci95_points"]
            d = r["delta_points"]
            ax.errorbar(d, y, xerr=[[d - lo], [hi - d]], fmt="o", color=f"C{k}", capsize=3, ms=4)
        if g:  # halfway between the previous group's last row and this one's first
            ax.axhline(y0 + (1 - step * (len(strategies) - 1)) / 2, color="0.8", lw=0.6)
    ax.axvline(0, color="black", lw=0.8)
    for x in (-effect, effect):
        ax.axvline(x, color="C3", ls="--", lw=0.8)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ref = rows[0]["reference"]
    ax.set_xlabel(f"Δ per-prompt score vs {ref} (points, 95% hierarchical bootstrap)")
    ax.set_title(f"{model}: Δ vs {ref}", fontsize=9)
    handles = [Line2D([], [], color=f"C{k}", marker="o", ls="", label=s) for k, s in
               enumerate(strategies)]  # fmt: skip
    handles.append(Patch(color="0.88", label="±MDE (80% power)"))
    handles.append(Line2D([], [], color="C3", ls="--", label=f"±{effect:g} effect of interest"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _save(fig, path)


def _pairs(results: dict[str, Any], path: Path) -> str:
    """Pair statistics vs noise, one line per pair set (variants share their strategy's)."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(c["model"] for c in results["cells"]))
    series: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    colors: dict[str, str] = {}  # one colour per pair set in every panel
    fig, axes = plt.subplots(1, len(PAIR_STATS), figsize=(4.2 * len(PAIR_STATS), 3.4))
    for ax, (key, title) in zip(axes, PAIR_STATS, strict=True):
        series.clear()
        seen = set()
        for c in results["cells"]:
            name = c["pairs"].get("strategy", c["strategy"])
            label = name if len(models) == 1 else f"{name} ({c['model']})"
            if (label, c["noise"], c["seed"]) in seen or c["pairs"].get(key) is None:
                continue
            seen.add((label, c["noise"], c["seed"]))
            series[label][c["noise"]].append(c["pairs"][key])
        for label, by_noise in series.items():
            xs = sorted(by_noise)
            mean = [np.mean(by_noise[x]) for x in xs]
            lo = [min(by_noise[x]) for x in xs]
            hi = [max(by_noise[x]) for x in xs]
            # clipped: the mean of equal values can fall a rounding error outside them
            err = np.clip([np.subtract(mean, lo), np.subtract(hi, mean)], 0, None)
            color = colors.setdefault(label, f"C{len(colors)}")
            ax.errorbar(xs, mean, yerr=err, marker="o", capsize=3, color=color, label=label)
        ax.set_xticks(sorted({c["noise"] for c in results["cells"]}))
        ax.set_xlabel("judge noise p")
        ax.set_title(title, fontsize=9)
    # SFT and KTO examples have no pair statistics: name the subset shown
    only = any(c["pairs"].get("kind", "preference") != "preference" for c in results["cells"])
    subset = ", preference strategies only" if only else ""
    fig.suptitle(f"pair statistics (mean over seeds, bars: min-max{subset})", fontsize=9)
    _legend_right(fig, axes[0])
    return _save(fig, path)


def _model_size(table: dict[str, Any], path: Path) -> str | None:
    import matplotlib.pyplot as plt

    table = {
        m: {t: e for t, e in tasks.items() if "overall" in next(iter(e.values()))}
        for m, tasks in table.items()
    }
    models = [m for m, t in table.items() if t]
    if len(models) < 2:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.4))
    task = next(iter(table[models[0]]))
    strategies = {k.split("|")[0] for k in table[models[0]][task]}
    for s in sorted(strategies):
        ys = [
            100
            * np.mean(
                [e["overall"]["mean"] for k, e in table[m][task].items() if k.startswith(s + "|")]
            )
            for m in models
        ]
        ax.plot(models, ys, marker="o", label=s)
    ax.set_ylabel(f"{task} overall (%)")
    ax.set_title(f"{task} only, mean over noise levels and seeds", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _errorbar(ax: Any, x: float, y: dict, xerr: dict | None = None, **style: Any) -> None:
    """One point with its 95% interval (`y`, `xerr`: a level or a comparison, in points)."""

    def half(d: dict, mean: str) -> list[list[float]]:
        lo, hi = d["ci95_points"]
        return [[max(d[mean] - lo, 0)], [max(hi - d[mean], 0)]]

    my = "delta_points" if "delta_points" in y else "mean_points"
    xe = half(xerr, "mean_points") if xerr else None
    ax.errorbar(x, y[my], yerr=half(y, my), xerr=xe, capsize=3, ms=6, **style)


def _size_axis(cfg: dict[str, Any], analysis: dict[str, Any], path: Path) -> str | None:
    """The model-size axis: the primary Δ and the base model's conditionality against size,
    and Δ against the base model's conditionality; hollow: inconclusive (did not learn)."""
    import matplotlib.pyplot as plt

    rows = size_axis(cfg, analysis)
    if not rows:
        return None
    sized = all(r["params"] for r in rows)  # otherwise the ladder's order stands in for size
    xs = [r["params"] if sized else i for i, r in enumerate(rows)]
    prim = analysis["settings"]["primary"]
    noises = sorted({v["noise"] for r in rows for v in r["primary"]})
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    delta_ax, j_ax, dj_ax = axes

    def point(v: dict) -> dict[str, Any]:
        k = noises.index(v["noise"])
        hollow = v["verdict"].startswith(INCONCLUSIVE)
        return {"fmt": "o", "color": f"C{k}", "mfc": "white" if hollow else f"C{k}"}

    for r, x in zip(rows, xs, strict=True):
        j = r["base"].get("conditionality")
        for v in r["primary"]:  # noise levels side by side
            dodge = 0.06 * (noises.index(v["noise"]) - (len(noises) - 1) / 2)
            _errorbar(delta_ax, x * (1 + dodge) if sized else x + dodge, v, **point(v))
            if j:
                _errorbar(dj_ax, j["mean_points"], v, xerr=j, **point(v))
        if j:
            _errorbar(j_ax, x, j, fmt="s", color="k")
    for ax in (delta_ax, j_ax):
        if sized:
            ax.set_xscale("log")
            ax.set_xlabel("nominal parameters (log)", fontsize=8)
        ax.set_xticks(xs, [r["model"] for r in rows], fontsize=7, rotation=15)
        ax.minorticks_off()
    for ax in (delta_ax, dj_ax):
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylabel(f"Δ {prim['strategy']} - {prim['reference']}\n{prim['task']} (points)",
                      fontsize=8)  # fmt: skip
    j_ax.set_ylabel("base conditionality J (points)", fontsize=8)
    dj_ax.set_xlabel("base conditionality J (points)", fontsize=8)
    delta_ax.set_title("Δ against size", fontsize=9)
    j_ax.set_title("conditionality of the untrained model", fontsize=9)
    dj_ax.set_title("Δ against the base model's conditionality", fontsize=9)
    handles = [plt.Line2D([], [], marker="o", ls="", color=f"C{k}", label=f"p={p:g}")
               for k, p in enumerate(noises)]  # fmt: skip
    handles.append(plt.Line2D([], [], marker="o", ls="", color="k", mfc="white",
                              label="hollow: inconclusive (a side did not learn)"))  # fmt: skip
    delta_ax.legend(handles=handles, fontsize=7)
    families = sorted({r["family"] for r in rows})
    confound = (f"size and family confounded ({', '.join(families)})" if len(families) > 1
                else "one family")  # fmt: skip
    fig.suptitle(f"model-size axis, bars: 95% intervals; {confound}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _margins(results: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

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
    return _save(fig, path)


def _training(results: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.4))
    seed = results["cells"][0]["seed"]  # one seed's curves: all of them would not read
    many = len({c["model"] for c in results["cells"]}) > 1
    for c in results["cells"]:
        log = c["train"].get("log", [])
        if c["seed"] != seed or not log:
            continue
        label = f"{c['strategy']} p={c['noise']:g}" + (f" ({c['model']})" if many else "")
        steps = [r["step"] for r in log]
        axes[0].plot(steps, [r["loss"] for r in log], label=label)
        axes[1].plot(steps, [r["reward_margin"] for r in log], label=label)
    axes[0].set_title(f"training loss (seed {seed})")
    axes[1].set_title(f"reward margin, chosen - rejected (seed {seed})")
    for ax in axes:
        ax.set_xlabel("step")
    _legend_right(fig, axes[0], right=0.85)
    return _save(fig, path)


def _learning(results: dict[str, Any], path: Path) -> str | None:
    """Whole-set preference accuracy against epochs, one panel per strategy (seeds and noise
    levels as lines), with the 0.5 of a model that learned nothing; None without points."""
    import matplotlib.pyplot as plt

    cells = [c for c in results["cells"] if c["train"].get("learning")]
    if not cells:
        return None
    strategies = list(dict.fromkeys(c["strategy"] for c in cells))
    several_models = len({c["model"] for c in cells}) > 1
    fig, axes = plt.subplots(1, len(strategies), figsize=(4.2 * len(strategies), 3.4),
                             sharey=True, squeeze=False)  # fmt: skip
    for ax, strategy in zip(axes[0], strategies, strict=True):
        for c in (c for c in cells if c["strategy"] == strategy):
            points = c["train"]["learning"]
            label, color = f"p={c['noise']:g} s{c['seed']}", None
            label = f"{c['model']} {label}" if several_models else label  # the size axis
            label += f" e{c['epochs']}" if c.get("epochs") is not None else ""  # budget axis
            sets = (("train", "-"), ("validation", "--"), ("gold", "-."))
            for name, style in sets:  # one colour a cell
                shown = [p for p in points if name in p]
                if not shown:
                    continue
                x = [p["epochs"] for p in shown]
                y = np.array([p[name]["accuracy"] for p in shown])
                ci = np.array([p[name]["accuracy_ci95"] for p in shown])
                # clipped at 0: stores written before `wilson` contained p exactly
                lo, hi = np.clip(y - ci[:, 0], 0, None), np.clip(ci[:, 1] - y, 0, None)
                shown_label = label if name == next(n for n, _ in sets if n in points[-1]) else None
                line = ax.errorbar(x, y, yerr=[lo, hi], fmt=style + "o", ms=3, capsize=2,
                                   color=color, label=shown_label)  # fmt: skip
                color = line[0].get_color()
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(strategy)
        ax.set_xlabel("epochs")
    axes[0][0].set_ylabel("preference accuracy")
    fig.suptitle("Did training learn? whole-set preference accuracy (solid: training pairs, "
                 "dashed: validation, dash-dot: gold set; bars: 95% Wilson; dotted: 0.5, "
                 "nothing learned)", fontsize=9)  # fmt: skip
    _legend_right(fig, axes[0][0], right=0.88)
    return _save(fig, path)


def _dose(results: dict[str, Any], analysis: dict[str, Any], path: Path) -> str | None:
    """Dose-response, where the grid has an `epochs` axis: the gold-set accuracy at the end
    of training and the primary endpoint against the training budget, per strategy and
    noise level (seeds pooled: mean, bars from the lowest to the highest seed's interval);
    None without the axis."""
    import matplotlib.pyplot as plt

    cells = [c for c in results["cells"] if c.get("epochs") is not None]
    if not cells:
        return None
    task = analysis["settings"]["primary"]["task"]
    epochs_of = {c["model"]: c["epochs"] for c in cells}  # a group is one epochs value
    fig, (gold_ax, score_ax) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    arms = dict.fromkeys((c["strategy"], c["noise"]) for c in cells)
    for strategy, noise in arms:
        label = f"{strategy} p={noise:g}"
        points = defaultdict(list)
        for c in cells:
            if (c["strategy"], c["noise"]) == (strategy, noise):
                points[c["epochs"]].append((c["train"].get("learning") or [{}])[-1].get("gold"))
        xs = sorted(e for e, golds in points.items() if all(golds))
        if xs:
            y = np.array([np.mean([g["accuracy"] for g in points[e]]) for e in xs])
            lo = y - [min(g["accuracy_ci95"][0] for g in points[e]) for e in xs]
            hi = [max(g["accuracy_ci95"][1] for g in points[e]) for e in xs] - y
            lo, hi = np.clip(lo, 0, None), np.clip(hi, 0, None)  # as in `_learning`
            gold_ax.errorbar(xs, y, yerr=[lo, hi], fmt="-o", ms=3, capsize=2, label=label)
        lv = sorted((epochs_of[v["model"]], v) for v in analysis["levels"]
                    if v["model"] in epochs_of and (v["task"], v["strategy"], v["noise"])
                    == (task, strategy, noise))  # fmt: skip
        if lv:
            y = np.array([v["mean_points"] for _, v in lv])
            ci = np.array([v["ci95_points"] for _, v in lv])
            err = [y - ci[:, 0], ci[:, 1] - y]
            score_ax.errorbar([e for e, _ in lv], y, yerr=err, fmt="-o", ms=3, capsize=2,
                              label=label)  # fmt: skip
    base = [v for v in analysis["levels"] if v["strategy"] == BASE and v["task"] == task]
    if base:
        score_ax.axhline(base[0]["mean_points"], color="grey", lw=0.8, ls="--", label=BASE)
    gold_ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    gold_ax.set_title("gold-set preference accuracy (end of training)")
    gold_ax.set_ylabel("accuracy")
    score_ax.set_title(f"primary endpoint: {task} score (points)")
    for ax in (gold_ax, score_ax):
        ax.set_xlabel("epochs")
    fig.suptitle("Dose-response: the training budget (bars: 95% intervals; dotted: 0.5, "
                 "nothing learned)", fontsize=9)  # fmt: skip
    _legend_right(fig, score_ax, right=0.84)
    return _save(fig, path)


def _legend_right(fig: Any, ax: Any, right: float = 0.91) -> None:
    """One legend for all panels, right of them, where it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, right, 1))
    fig.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(right, 0.5))


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")  # a figure legend is never clipped
    plt.close(fig)
    tmp.replace(path)
    return path.name
