"""The report's statistical sections in markdown: the opening verdict, power, and reversal
vs a noise-robust loss (numbers from rpo_bench.ablate.analysis, in points)."""

from __future__ import annotations

from typing import Any

from rpo_bench.ablate.analysis import NOT_LEARNED, describe_learning, size_axis
from rpo_bench.ablate.config import BASE, ROBUST_LOSSES

ONE_SEED = (
    "with one seed the seed-to-seed variance is not measured: the interval and the MDE "
    "cover prompt sampling only and are too narrow"
)


def interval(r: dict[str, Any]) -> str:
    lo, hi = r["ci95_points"]
    return f"{r['delta_points']:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def _num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _sd(var: float | None) -> str:
    return "not measured" if var is None else f"{var**0.5:.1f}"


def direction(r: dict[str, Any]) -> str:
    """The sign of Δ in words, at the precision shown: "`rpo` scored 3.1 points below
    `dpo_count`" (or "the same as" where Δ rounds to 0.0)."""
    d = round(r["delta_points"], 1)
    if d == 0:
        return f"`{r['strategy']}` scored the same as `{r['reference']}`"
    return (
        f"`{r['strategy']}` scored {abs(d):.1f} points {'above' if d > 0 else 'below'} "
        f"`{r['reference']}`"
    )


def unlearned(r: dict[str, Any]) -> list[str]:
    """The trained sides of a comparison whose models did not learn (gate: analysis)."""
    return [n for n, s in r.get("learning", {}).items() if s["status"] == NOT_LEARNED]


def _learning_words(r: dict[str, Any]) -> str:
    """'Learning: rpo learned (gold accuracy 0.71 [0.65, 0.77], seed 1); ...'."""
    said = [describe_learning(n, s) for n, s in r.get("learning", {}).items()]
    return ("Learning: " + "; ".join(said) + ".") if said else ""


def verdict_paragraph(analysis: dict[str, Any]) -> list[str]:
    """The report's opening: at each noise level, the primary comparison in words with its
    Δ, interval, MDE, verdict and each side's learning status, then both of its arms
    against the untrained model and every strategy against the placebo."""
    s = analysis["settings"]
    prim, effect = s["primary"], s["effect_of_interest"]
    models = {v["model"] for v in analysis["verdicts"]}
    vs_base = {(r["model"], r["task"], r["strategy"], r["noise"]): r for r in analysis["vs_base"]}
    threshold = s.get("learning_threshold", 0.5)
    text = [
        f"**Verdict.** Primary endpoint: `{prim['strategy']}` minus `{prim['reference']}` on "
        f"`{prim['task']}` (per-prompt `{prim['metric']}` score, points; 95% hierarchical "
        f"bootstrap interval; MDE at 80% power, 5% two-sided), effect of interest "
        f"{effect:g} points; `detected`: the interval excludes 0, else `not detected` where the "
        "MDE is at most the effect of interest and `underpowered` where it exceeds it. Learning "
        "gate: a verdict between two trained strategies stands only where both learned (every "
        f"seed's gold-set accuracy interval above {threshold:g}); otherwise it is "
        "`inconclusive`, its statistical verdict given beside it."
    ]
    one_seed = False
    for v in analysis["verdicts"]:
        where = f"p={v['noise']:g}" + (f" ({v['model']})" if len(models) > 1 else "")
        if "missing" in v:
            names = ", ".join(f"`{m}`" for m in v["missing"]) or "its per-prompt scores"
            text.append(f"At {where}: no verdict, not in the grid: {names}.")
            continue
        one_seed |= not v["seed_variance_measured"]
        statistical = v.get("statistical_verdict")
        text.append(
            f"At {where}: {direction(v)} (Δ = {interval(v)}), MDE {_num(v['mde_points'])} "
            f"({_count(v['n_seeds'], 'seed')} x {v['n_prompts']} prompts): **{v['verdict']}**"
            + (f" (statistically: {statistical})." if statistical else ".")
        )
        if words := _learning_words(v):
            text.append(words)
        arms = (prim["strategy"], prim["reference"])
        if BASE not in arms:  # else the sentence above already compares with it
            found = [vs_base.get((v["model"], v["task"], a, v["noise"])) for a in arms]
            said = [
                f"{direction(r)} ({interval(r)}, {r['verdict']}"
                + (", did not learn)" if unlearned(r) else ")")
                for r in found
                if r
            ]
            if said:
                text.append("Against the untrained model: " + "; ".join(said) + ".")
        here = (v["model"], v["task"], v["noise"])
        placebo = [r for r in analysis.get("vs_placebo", [])
                   if (r["model"], r["task"], r["noise"]) == here]  # fmt: skip
        if placebo:
            text.append(
                f"Against the placebo `{placebo[0]['reference']}` (pairs without a preference): "
                + "; ".join(f"{direction(r)} ({interval(r)}, {r['verdict']})" for r in placebo)
                + "."
            )
    if one_seed:
        text.append(ONE_SEED[0].upper() + ONE_SEED[1:] + ".")
    return [" ".join(text), ""]


def power_section(analysis: dict[str, Any]) -> list[str]:
    effect = analysis["settings"]["effect_of_interest"]
    md = [
        "## Power",
        "",
        "Minimum detectable effect (MDE, points) of each comparison as run: the true Δ a "
        "two-sided 5% test detects with 80% power, MDE = (z_0.975 + z_0.8)·SE = 2.80·SE. "
        "Prompts are shared by all cells and seed s shares its noise flips across "
        "strategies, so the per-(seed, prompt) differences form a crossed table with "
        "Var(Δ̂) = σ²_seed/S + σ²_prompt/P + σ²_resid/(S·P), components from its two-way "
        "ANOVA (rpo_bench.ablate.stats.power). `σ seed`, `σ prompt`, `σ resid`: their "
        "square roots, in points: how far Δ moves from seed to seed (training and noise "
        "flips), from prompt to prompt, and in the seed x prompt interaction (0: estimated "
        "below 0, truncated). `SE` = √Var(Δ̂). `seeds needed`: seeds for MDE ≤ "
        f"{effect:g} points at these prompts (`more prompts`: the prompt term alone exceeds "
        "it). The normal approximation is optimistic with few seeds: σ²_seed has S - 1 "
        "degrees of freedom, so from 2 seeds it (and the MDE) is itself very uncertain.",
        "",
        "| task | primary | comparison | seeds x prompts | largest MDE | MDE by noise p |",
        "|---|---|---|---|---|---|",
    ]
    measured = True
    for task, p in analysis["power"].items():
        by_noise = ", ".join(f"p={k}: {_num(v)}" for k, v in p["by_noise"].items())
        measured &= p["seed_variance_measured"]
        md.append(
            f"| {task} | {'yes' if p['primary'] else ''} | {', '.join(p['comparison'])} | "
            f"{p['n_seeds']} x {p['n_prompts']} | {_num(p['mde_points'])} | {by_noise} |"
        )
    if not measured:
        md += ["", f"Seed variance not measured: {ONE_SEED}."]
    md += [
        "",
        "| task | comparison | p | Δ [95% CI] | σ seed | σ prompt | σ resid | SE | MDE "
        "| seeds needed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    prim = analysis["settings"]["primary"]["strategy"]
    for r in analysis["comparisons"]:
        if r["strategy"] != prim:
            continue
        v = r["var_points2"]
        if not r["seed_variance_measured"]:
            need = "seed variance not measured"
        else:
            need = str(r["seeds_needed"]) if r["seeds_needed"] else "more prompts"
        prompt = _sd(v["prompt"]) if v["prompt"] is not None else "in resid"
        md.append(
            f"| {r['task']} | {r['strategy']} - {r['reference']} | {r['noise']:g} | "
            f"{interval(r)} | {_sd(v['seed'])} | {prompt} | {_sd(v['resid'])} | "
            f"{_num(r['se_points'])} | {_num(r['mde_points'])} | {need} |"
        )
    return [*md, ""]


def robustness_section(analysis: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """Is reversal more robust than a noise-robust loss on the reference's pairs?"""
    s = analysis["settings"]
    prim, variants = s["primary"], s["robust"]
    strategy, ref = prim["strategy"], prim["reference"]
    md = [f"## Reversal vs a noise-robust loss on `{ref}` pairs", ""]
    noises = analysis["noise"]
    if not variants:
        md += [
            f"Not answerable from this grid: it has no variant training `{ref}`'s pairs "
            f"with a noise-robust loss ({', '.join(f'`{x}`' for x in ROBUST_LOSSES)}). "
            "Missing cells: "
            + ", ".join(f"`{ref}` + robust loss at p={p:g}" for p in noises)
            + ". Declare one under `strategies:` and add it to `grid.strategy`, e.g. "
            f"`{ref}_robust: {{pairs: {ref}, train: {{loss: robust_dpo, label_smoothing: 0.2}}}}`.",
            "",
        ]
        return md
    rows = analysis["robustness"]["comparisons"]
    present = {(r["reference"], r["noise"]) for r in rows}
    missing = [f"`{v}` at p={p:g}" for v in variants for p in noises if (v, p) not in present]
    if strategy not in {c for c, _ in _strategies(analysis)}:
        missing.insert(0, f"`{strategy}` (every p)")
    md += [
        f"Δ = `{strategy}` minus each variant, per noise level (points, 95% hierarchical "
        "bootstrap; verdict as for the primary endpoint). Δ > 0: reversal does better than "
        "the robust loss on the same noisy judgments.",
        "",
    ]
    if rows:
        md += ["| task | p | variant (loss) | Δ [95% CI] | MDE | verdict |",
               "|---|---|---|---|---|---|"]  # fmt: skip
        for r in sorted(rows, key=lambda r: (r["model"], r["noise"], r["task"])):
            own = cfg.get("strategies", {}).get(r["reference"], {}).get("train", {})
            loss = own.get("loss", cfg.get("train", {}).get("loss"))
            md.append(
                f"| {r['task']} | {r['noise']:g} | {r['reference']} ({loss}) | {interval(r)} | "
                f"{_num(r['mde_points'])} | {r['verdict']} |"
            )
        md += ["", _answer(rows, strategy, prim["task"]), ""]
    if missing:
        md += ["Missing cells: " + ", ".join(missing) + ".", ""]
    return md


def _strategies(analysis: dict[str, Any]) -> set[tuple[str, float]]:
    return {(lv["strategy"], lv["noise"]) for lv in analysis["levels"]}


def _answer(rows: list[dict[str, Any]], strategy: str, task: str) -> str:
    """One sentence per noise level on the primary task."""
    from rpo_bench.ablate.analysis import DETECTED

    parts = []
    for r in sorted((r for r in rows if r["task"] == task), key=lambda r: r["noise"]):
        if r["verdict"] == DETECTED:
            said = direction(r)
        else:
            said = f"`{strategy}` vs `{r['reference']}`: {r['verdict']}"
        parts.append(f"at p={r['noise']:g}, {said} ({interval(r)})")
    if not parts:
        return f"No robust-loss cell on `{task}`."
    return f"On `{task}`: " + "; ".join(parts) + "."


# The paper's Table 1 averages (rpo_method.md): (model, benchmark, DPO, RPO), points.
PAPER_DELTAS = (
    ("Llama-3.1-8B-Instruct", "SysBench avg", 62.53, 67.12),
    ("Llama-3.1-8B-Instruct", "Multi-IF avg", 66.66, 69.18),
    ("Qwen2.5-7B-Instruct", "SysBench avg", 59.49, 63.06),
    ("Qwen2.5-7B-Instruct", "Multi-IF avg", 63.11, 66.27),
    ("Llama-3.1-70B-Instruct", "SysBench avg", 70.64, 77.83),
    ("Llama-3.1-70B-Instruct", "Multi-IF avg", 75.92, 78.15),
)


def paper_section(analysis: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """This study's primary Δ next to the paper's RPO - DPO, and why they may not compare."""
    prim = analysis["settings"]["primary"]
    md = [
        "## Next to the paper",
        "",
        f"The paper's DPO baseline ranks responses by constraints satisfied, as `dpo_count` "
        f"does; its Δ is RPO minus that DPO on Table 1's averages. This study's Δ is the "
        f"primary comparison (`{prim['strategy']}` minus `{prim['reference']}` on "
        f"`{prim['task']}`).",
        "",
        "| source | model | benchmark | judge noise p | Δ RPO - DPO (points) |",
        "|---|---|---|---|---|",
    ]
    for model, bench, dpo, rpo in PAPER_DELTAS:
        md.append(f"| paper, Table 1 | {model} | {bench} | - | {rpo - dpo:+.2f} |")
    for v in analysis["verdicts"]:
        if "missing" in v:
            continue
        md.append(
            f"| this study | {v['model']} | {prim['task']} | {v['noise']:g} | {interval(v)} "
            f"(MDE {_num(v['mde_points'])}) |"
        )
    d, t, e = cfg["data"], cfg["train"], cfg["eval"]
    md += [
        "",
        "Where scale makes them incomparable: the paper trains 7B-70B models with LoRA for "
        "3 epochs in batches of about 1024 pairs and scores "
        "SysBench (five-turn, GPT-4o-judged free-text constraints) and Multi-IF (three "
        f"turns, eight languages). This study trains {', '.join(cfg['grid']['model'])} for "
        f"{t.get('epochs', 1)} epoch(s) on pairs from {d['n_conversations']} "
        f"{d['turns']}-turn conversations and scores exactly verifiable constraints with "
        f"the rule judge, {e['max_new_tokens']} new tokens per reply. A small model far "
        "below the constraints' ceiling may gain from any preference signal, or from none; "
        "the sign and size of Δ here say what reversal does at this scale and with these "
        "constraints, not what it does for the paper's models. Only the direction is "
        "comparable, and only where the verdict is `detected`.",
        "",
    ]
    return md


def learning_rows(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each trained cell's learning at step 0 and at its last point (results.json
    `learning`); a cell trained before learning was measured has no points."""
    rows = []
    for c in cells:
        points = c["train"].get("learning", [])
        rows.append({**{k: c[k] for k in ("model", "strategy", "noise", "seed")},
                     "start": points[0] if points else None,
                     "end": points[-1] if points else None})  # fmt: skip
    return rows


def learning_section(rows: list[dict[str, Any]]) -> list[str]:
    """ "Did training learn?": whole-set preference accuracy, margin and loss against its
    null at the end of each cell's training (train/learning.py)."""

    def acc(point: dict | None, name: str) -> str:
        s = (point or {}).get(name)
        if not s:
            return "-"
        lo, hi = s["accuracy_ci95"]
        return f"{s['accuracy']:.2f} [{lo:.2f}, {hi:.2f}] (n={s['n']})"

    def other(point: dict | None) -> list[str]:  # the training pairs' loss, margin, drift
        s = (point or {}).get("train")
        if not s:
            return ["-"] * 3
        return [f"{s['loss']:.3f} ({s['null_loss']:.3f})", f"{s['margin']:+.3f}",
                f"{s['drift_chosen']:+.1f} / {s['drift_rejected']:+.1f}"]  # fmt: skip

    unmeasured = not any(r["end"] for r in rows)
    lines = [
        "## Did training learn?",
        "",
        *(
            [
                "**Not measured: every cell here was trained before learning was measured, so "
                "nothing in this report shows that its models learned their pairs; the per-step "
                "loss in training.png is the only sign. A difference between models that did not "
                "learn is not evidence about the methods that trained them.**",
                "",
            ]
            if unmeasured
            else []
        ),  # fmt: skip
        "Preference accuracy on whole sets at the end of training: the share of pairs whose "
        "implicit reward (beta x the policy-minus-reference log-ratio) is higher for the "
        "chosen reply, ties counted half, with a 95% Wilson interval. At step 0 the policy is "
        "the reference, so every pair ties: 0.5 is what a model that learned nothing scores. "
        "`train`: the cell's own training pairs (has it learned them?); `validation`: pairs "
        "held out whole turns at a time (`train.val_fraction`; has it generalized?); `gold`: "
        "the gold set, the same pairs for every model (held-out turns' sampled replies, the "
        "one satisfying strictly more of the original prompt's constraints chosen; config "
        "`gold`), the yardstick of the learning gate. Loss: "
        "on the training pairs, with its null (the same loss for a model that learned "
        "nothing) in brackets. Drift: the mean change of the chosen / rejected replies' "
        "log-probs against the reference (both falling: squeezing). `-`: not measured (a "
        "loss without pairs, or trained before learning was measured). See docs/report.md.",
        "",
        "| model | strategy | noise p | seed | epochs | train accuracy | validation accuracy "
        "| gold accuracy | loss (null) | margin | drift chosen / rejected |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        end = r["end"]
        epochs = f"{end['epochs']:g}" if end else "-"
        lines.append("| " + " | ".join([r["model"], r["strategy"], f"{r['noise']:g}",
                                        str(r["seed"]), epochs, acc(end, "train"),
                                        acc(end, "validation"), acc(end, "gold"),
                                        *other(end)]) + " |")  # fmt: skip
    return [*lines, ""]


def _level(lv: dict[str, Any] | None) -> str:
    if not lv:
        return "-"
    lo, hi = lv["ci95_points"]
    return f"{lv['mean_points']:.1f} [{lo:.1f}, {hi:.1f}]"


def size_section(cfg: dict[str, Any], analysis: dict[str, Any]) -> list[str]:
    """The model-size axis: each model's base scores and conditionality, and the primary Δ at
    each noise level, in ladder order; empty below two models."""
    rows = size_axis(cfg, analysis)
    if not rows:
        return []
    prim = analysis["settings"]["primary"]
    tasks = list(dict.fromkeys(t for r in rows for t in r["base"]))
    families = sorted({r["family"] for r in rows})
    md = [
        "## Model size",
        "",
        f"Each model untrained (`base`: score in points, 95% interval; `conditionality`: the "
        f"index J, docs/models.md) and the primary Δ (`{prim['strategy']}` - "
        f"`{prim['reference']}` on `{prim['task']}`) where the model was trained. Size is "
        "the nominal size its name states. "
        + (
            f"Size and family are confounded: the ladder mixes {', '.join(families)}, so a "
            "trend along it may be the family's as much as the size's."
            if len(families) > 1
            else "One family: the ladder varies size only."
        ),
        "",
        "| model | family | size | "
        + " | ".join(f"base {t}" for t in tasks)
        + " | Δ (p) [95% CI] | verdict |",
        "|---|---|---|" + "---|" * len(tasks) + "---|---|",
    ]
    for r in rows:
        p = r["params"]
        size = "-" if p is None else f"{p / 1e6:g}M" if p < 1e9 else f"{p / 1e9:g}B"
        levels = " | ".join(_level(r["base"].get(t)) for t in tasks)
        if not r["primary"]:
            why = "evaluated untrained only" if not r["trained"] else "no comparison"
            md.append(f"| {r['model']} | {r['family']} | {size} | {levels} | - | {why} |")
        for v in r["primary"]:
            md.append(f"| {r['model']} | {r['family']} | {size} | {levels} | "
                      f"{interval(v)} (p={v['noise']:g}) | {v['verdict']} |")  # fmt: skip
    return md + [""]
