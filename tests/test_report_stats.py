"""The report's statistics: MDE from variance components, the hierarchical bootstrap, the
verdict on the primary endpoint, and a report from synthetic results that opens with it."""

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from rpo_bench.ablate import analysis, plots, report, sections
from rpo_bench.ablate.config import AblationConfig, Analysis, Grid, Primary, Variant
from rpo_bench.ablate.stats import (
    Z_MDE,
    hierarchical_bootstrap,
    paired_bootstrap,
    power,
    seeds_needed,
)
from rpo_bench.train.learning import wilson


def test_mde_by_hand_on_a_two_seed_three_prompt_table():
    # d = [[1, 2, 3], [3, 4, 8]]: mean 3.5, seed means 2 and 5, prompt means 2, 3, 5.5.
    # MS_seed = 3 * (1.5² + 1.5²) / 1 = 13.5; MS_prompt = 2 * (1.5² + 0.5² + 2²) / 2 = 6.5;
    # residuals ±0.5, ±0.5, ∓1 per row: MS_resid = 3 / 2 = 1.5.
    # σ²_seed = (13.5 - 1.5) / 3 = 4, σ²_prompt = (6.5 - 1.5) / 2 = 2.5, σ²_resid = 1.5;
    # Var = 4/2 + 2.5/3 + 1.5/6 = 37/12 (= (13.5 + 6.5 - 1.5) / 6).
    p = power([[1, 2, 3], [3, 4, 8]])
    assert (p.n_seeds, p.n_prompts, p.delta) == (2, 3, 3.5)
    assert (p.var_seed, p.var_prompt, p.var_resid) == pytest.approx((4.0, 2.5, 1.5))
    assert p.se == pytest.approx(math.sqrt(37 / 12))
    assert Z_MDE == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert p.mde == pytest.approx(2.801585 * math.sqrt(37 / 12), rel=1e-6)
    assert p.seed_variance_measured
    # MDE <= 5 needs (4 + 1.5/3) / ((5/Z)² - 2.5/3) = 1.91 -> 2 seeds. MDE <= 1.5 needs
    # (1.5/Z)² = 0.29 < 2.5/3, the prompt term alone: no number of seeds reaches it.
    assert seeds_needed(p, 5.0) == 2
    assert seeds_needed(p, 1.5) is None


def test_mde_with_one_seed_leaves_the_seed_component_unmeasured():
    # d = [1, 2, 3, 6]: mean 3, sample variance (4 + 1 + 0 + 9) / 3 = 14/3, SE² = 14/12.
    p = power([1, 2, 3, 6])
    assert (p.n_seeds, p.n_prompts, p.delta) == (1, 4, 3.0)
    assert p.var_seed is None and p.var_prompt is None and not p.seed_variance_measured
    assert p.var_resid == pytest.approx(14 / 3)
    assert p.mde == pytest.approx(Z_MDE * math.sqrt(14 / 12))
    assert seeds_needed(p, 100.0) is None
    assert power([[2.0]]).mde is None


def test_hierarchical_bootstrap_is_seeded_and_reduces_to_the_prompt_bootstrap():
    rng = np.random.default_rng(3)
    d = rng.normal(size=(3, 20))
    assert hierarchical_bootstrap(d, 300, seed=1) == hierarchical_bootstrap(d, 300, seed=1)
    assert hierarchical_bootstrap(d, 300, seed=1) != hierarchical_bootstrap(d, 300, seed=2)
    one = d[:1]
    got, want = hierarchical_bootstrap(one, 300), paired_bootstrap(one[0], np.zeros(20), 300)
    assert got == pytest.approx(want, abs=1e-12)


def test_hierarchical_bootstrap_resamples_seeds_too():
    # Every prompt agrees within a seed; only the seeds differ. A prompt-only bootstrap would
    # give a zero-width interval; resampling seeds spans both seeds' means.
    d = np.array([[0.0] * 10, [1.0] * 10])
    mean, lo, hi = hierarchical_bootstrap(d, 500)
    assert (mean, lo, hi) == (0.5, 0.0, 1.0)


def test_hierarchical_bootstrap_covers_a_known_effect():
    """Crossed seed, prompt and residual effects around Δ = 2: the interval covers Δ in
    at least 90% of 200 simulated studies (the pigeonhole bootstrap errs wide)."""
    rng = np.random.default_rng(0)
    covered = 0
    for k in range(200):
        d = (
            2.0
            + rng.normal(0, 0.5, (4, 1))
            + rng.normal(0, 2.0, (1, 30))
            + rng.normal(0, 3.0, (4, 30))
        )
        _, lo, hi = hierarchical_bootstrap(d, 400, seed=k)
        covered += lo <= 2.0 <= hi
    assert covered >= 180, covered


@pytest.mark.parametrize(
    ("lo", "hi", "mde", "expected"),
    [
        (0.5, 6.0, 9.0, analysis.DETECTED),  # excludes 0: detected, however underpowered
        (-6.0, -0.1, 2.0, analysis.DETECTED),
        (-1.0, 2.0, 2.5, analysis.NOT_DETECTED),
        (-1.0, 2.0, 3.5, analysis.UNDERPOWERED),
        (-1.0, 2.0, None, analysis.UNDERPOWERED),
    ],
)
def test_verdict_wording(lo, hi, mde, expected):
    assert analysis.verdict(lo, hi, mde, effect=3.0) == expected
    assert analysis.UNDERPOWERED == "underpowered (MDE > effect of interest)"


# --- a report from synthetic results ---------------------------------------------------------

PAIR_STATS = {"pairs": 10, "pairs_per_response": 0.25, "share_turns_with_pair": 0.5,
              "mean_margin": 1.5, "pair_noise": 0.1, "pair_inversion": 0.05,
              "margin_histogram": {"1": 5, "2": 5}}  # fmt: skip


def _eval(scores: list[float]) -> dict:
    m = float(np.mean(scores))
    metrics = {k: m for k in report.COLUMNS}
    return {"metrics": metrics, "per_prompt": list(scores)}


def synthetic(
    seeds=(0, 1), strategies=("dpo_count", "rpo"), shift=None, variants=None, reference=None,
    gold=0.8, models=("smollm2-135m",), base_only=(),
):  # fmt: skip
    """Two tasks x noise {0, 0.2}; `shift[strategy]`: points added to every prompt (base
    gets none); `gold`: every cell's gold-set accuracy at the end of training, on 200
    pairs (0.8: all learned; None: trained before learning was measured). Every model
    (`models` trained, `base_only` not) is scored on the same prompts."""
    shift = shift or {}
    primary = Primary(task="heldout", reference=reference or Primary.reference)
    cfg = AblationConfig(
        name="synthetic",
        grid=Grid(
            strategy=tuple(strategies),
            noise=(0.0, 0.2),
            seed=tuple(seeds),
            model=tuple(models),
            base_only=tuple(base_only),
        ),  # fmt: skip
        strategies=variants or {},
        analysis=Analysis(primary=primary, effect_of_interest=3.0),
    )
    rng = np.random.default_rng(0)
    prompts = {"heldout": rng.uniform(0.2, 0.8, 40), "ifeval_local": rng.uniform(0.2, 0.8, 30)}
    cells = []
    for c in cfg.cells():
        ev = {}
        for task, base in prompts.items():
            noise = rng.normal(0, 0.02, base.size) + rng.normal(0, 0.005)
            ev[task] = _eval(list(base + shift.get(c.strategy, 0.0) / 100 + noise))
        log = [{"step": 1, "loss": 0.7, "reward_margin": 0.0}]
        train = {"log": log}
        if gold is not None:
            train["learning"] = [{"step": 8, "epochs": 1, "gold": _gold(gold)}]
        cells.append({**dataclasses.asdict(c), "pairs": PAIR_STATS, "train": train,
                      "eval": ev})  # fmt: skip
    return {
        "config": cfg.to_dict(),
        "base": {
            m: {t: _eval(list(b)) for t, b in prompts.items()} for m in (*models, *base_only)
        },  # fmt: skip
        "cells": cells,
        "provenance": {
            "git_commit": "abc",
            "wall_seconds": 1.0,
            "stage_seconds": {"eval": 1.0},
            "versions": {"python": "3"},
        },  # fmt: skip
    }


def _gold(accuracy: float, n: int = 200) -> dict:
    return {"n": n, "accuracy": accuracy, "accuracy_ci95": wilson(accuracy * n, n)}


def test_report_opens_with_the_verdict_and_carries_power(tmp_path):
    path = report.write(synthetic(shift={"rpo": 5.0}), tmp_path)
    md = path.read_text()
    first = md.split("\n\n")[1]  # the paragraph after the title
    assert first.startswith("**Verdict.**") and "`rpo` minus `dpo_count` on `heldout`" in first
    assert first.count(f"**{analysis.DETECTED}**") == 2 and "p=0:" in first and "p=0.2:" in first
    assert re.search(r"At p=0: `rpo` scored \d\.\d points above `dpo_count` \(Δ = \+", first)
    assert "## Power" in md and "## Reversal vs a noise-robust loss" in md
    assert "Not answerable from this grid" in md
    results = json.loads((tmp_path / "results.json").read_text())
    heldout = results["power"]["heldout"]
    assert heldout["primary"] and not results["power"]["ifeval_local"]["primary"]
    assert (heldout["n_prompts"], heldout["n_seeds"]) == (40, 2)
    assert 0 < heldout["mde_points"] < 3.0 and heldout["seed_variance_measured"]
    for png in ("forest_smollm2-135m.png", "noise_smollm2-135m.png", "pairs.png"):
        assert (tmp_path / png).stat().st_size > 1000 and f"]({png})" in md


def test_verdict_not_detected_and_one_seed(tmp_path):
    report.write(synthetic(seeds=(0,)), tmp_path)
    md = (tmp_path / "report.md").read_text()
    first = md.split("\n\n")[1]
    assert f"**{analysis.NOT_DETECTED}**" in first and "1 seed x 40 prompts" in first
    assert "seed-to-seed variance is not measured" in first
    power = json.loads((tmp_path / "results.json").read_text())["power"]["heldout"]
    assert not power["seed_variance_measured"] and "not measured" in power["note"]


def test_robustness_section_compares_rpo_with_a_robust_variant(tmp_path):
    variants = {"dpo_count_robust": Variant("dpo_count", {"loss": "robust_dpo"}),
                "dpo_count_cdpo": Variant("dpo_count", {"loss": "cdpo"})}  # fmt: skip
    results = synthetic(strategies=("dpo_count", "dpo_count_robust", "rpo"), variants=variants)
    report.write(results, tmp_path)
    md = (tmp_path / "report.md").read_text()
    section = md.split("## Reversal vs a noise-robust loss")[1].split("\n## ")[0]
    assert section.count("| dpo_count_robust (robust_dpo) |") == 4  # 2 tasks x 2 noise levels
    assert "Missing cells: `dpo_count_cdpo` at p=0, `dpo_count_cdpo` at p=0.2." in section
    robust = json.loads((tmp_path / "results.json").read_text())["analysis"]["robustness"]
    assert robust["variants"] == ["dpo_count_robust", "dpo_count_cdpo"]


def test_missing_primary_cells_are_named(tmp_path):
    report.write(synthetic(strategies=("dpo_count", "drop_failed")), tmp_path)
    first = (tmp_path / "report.md").read_text().split("\n\n")[1]
    assert "At p=0: no verdict, not in the grid: `rpo`." in first


def test_a_baseline_can_be_the_primary_comparison(tmp_path):
    """SFT and KTO cells are strategies like the pair strategies: one may be compared."""
    from rpo_bench.ablate.config import load

    path = tmp_path / "a.yaml"
    path.write_text("name: a\nanalysis: {primary: {strategy: rpo, reference: sft_chosen}}\n")
    assert load(path).analysis.primary.reference == "sft_chosen"
    path.write_text("name: a\nanalysis: {primary: {strategy: nonsense}}\n")
    with pytest.raises(
        ValueError,
        match=r"a\.yaml:2: field 'analysis\.primary\.strategy' has the unknown value 'nonsense'",
    ):
        load(path)


# --- what the report says in words ---------------------------------------------------------


def test_the_verdict_says_below_and_compares_both_arms_with_base(tmp_path):
    """rpo 5 points below base, dpo_count 2 above: the opening says so, with intervals."""
    report.write(synthetic(shift={"rpo": -5.0, "dpo_count": 2.0}), tmp_path)
    md = (tmp_path / "report.md").read_text()
    first = md.split("\n\n")[1]
    said = re.findall(r"`rpo` scored (\d+\.\d) points below `dpo_count` \(Δ = -", first)
    assert len(said) == 2 and all(6.0 <= float(x) <= 8.0 for x in said)
    base = (
        r"`{}` scored \d\.\d points {} `base` \([-+]\d\.\d \[[-+]\d\.\d, [-+]\d\.\d\], detected\)"
    )
    assert len(re.findall(base.format("rpo", "below"), first)) == 2
    assert len(re.findall(base.format("dpo_count", "above"), first)) == 2
    results = json.loads((tmp_path / "results.json").read_text())
    vs_base = results["analysis"]["vs_base"]
    # every strategy x task x noise level, paired over the strategy's seeds and all prompts
    assert len(vs_base) == 2 * 2 * 2 and {r["reference"] for r in vs_base} == {"base"}
    for r in vs_base:
        lo, hi = r["ci95_points"]
        assert lo < r["delta_points"] < hi and r["n_seeds"] == 2
        assert abs(r["delta_points"] - {"rpo": -5.0, "dpo_count": 2.0}[r["strategy"]]) < 1.5
    entry = results["summary"]["smollm2-135m"]["heldout"]["dpo_count|0.0"]["delta_vs_base"]
    assert entry["reference"] == "base" and len(entry["ci95_points"]) == 2
    rows = {(r["strategy"], r["noise p"]): r for r in _table(md, "## heldout (smollm2-135m)")}
    assert rows[("dpo_count", "0.0")]["Δ score vs base [95% CI]"].endswith("] *")
    assert rows[("rpo", "0.2")]["Δ score vs base [95% CI]"].startswith("-")
    assert rows[("base", "-")]["Δ score vs base [95% CI]"] == ""


def _table(md: str, heading: str) -> list[dict[str, str]]:
    """The rows of the first table under `heading`, by column name."""
    lines = md.split(heading)[1].split("\n\n")[2].splitlines()

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip("|").split("|")]

    return [dict(zip(cells(lines[0]), cells(line), strict=True)) for line in lines[2:]]


def test_direction_words():
    def said(delta):
        return sections.direction({"strategy": "a", "reference": "b", "delta_points": delta})

    assert said(-3.14) == "`a` scored 3.1 points below `b`"
    assert said(0.96) == "`a` scored 1.0 points above `b`"
    assert said(-0.04) == said(0.04) == "`a` scored the same as `b`"  # as shown: 0.0


def test_with_base_as_the_reference_nothing_is_said_twice(tmp_path):
    report.write(synthetic(shift={"rpo": -5.0}, reference="base"), tmp_path)
    md = (tmp_path / "report.md").read_text()
    first = md.split("\n\n")[1]
    assert first.count("`rpo` scored") == 2 and "Against the untrained model" not in first
    assert md.count("| Δ score vs base [95% CI] |") == 2  # one column per task table
    found = json.loads((tmp_path / "results.json").read_text())["analysis"]
    assert found["vs_base"] == found["comparisons"]


def test_every_statistic_shown_is_defined(tmp_path):
    report.write(synthetic(), tmp_path)
    md = (tmp_path / "report.md").read_text()
    pairs = md.split("## Pairs")[1].split("\n## ")[0]
    for name in ("examples / sampled response", "turns used (share)", "mean margin",
                 "label noise", "pair inversion"):  # fmt: skip
        assert f"| {name} |" in pairs and f"`{name}`: " in pairs, name
    power_text = md.split("## Power")[1].split("\n\n")[1]
    assert "`σ seed`, `σ prompt`, `σ resid`: their square roots" in power_text
    assert "`SE` = √Var(Δ̂)" in power_text
    docs = (Path(__file__).parents[1] / "docs" / "report.md").read_text()
    glossary = docs.split("## Statistics in the report")[1]
    for name in ("label noise", "pair inversion", "σ seed", "Δ vs base", "SE", "MDE"):
        assert f"**{name}" in glossary or f", {name}" in glossary, name


def test_a_plot_of_a_subset_names_it(tmp_path, monkeypatch):
    titles: dict[str, list[str]] = {}
    save = plots._save

    def spy(fig, path):
        found = [ax.get_title() for ax in fig.axes]
        titles[path.name] = found + ([fig._suptitle.get_text()] if fig._suptitle else [])
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    results = synthetic(seeds=(3, 4))
    results["cells"].sort(key=lambda c: c["seed"])
    report.write(results, tmp_path)
    assert all(t.endswith("(seed 3)") for t in titles["training.png"]) and titles["training.png"]
    assert "preference strategies only" not in titles["pairs.png"][-1]
    for png in ("forest_smollm2-135m.png", "noise_smollm2-135m.png", "strategies_smollm2-135m.png"):
        assert any(t.startswith("smollm2-135m: ") for t in titles[png]), png
    results["cells"][0]["pairs"] = {**PAIR_STATS, "kind": "sft"}
    report.write(results, tmp_path)
    assert titles["pairs.png"][-1].endswith("preference strategies only)")


def _point(step: int, epochs: float, accuracy: float, n: int = 20) -> dict:
    stats = {"n": n, "accuracy": accuracy, "accuracy_ci95": wilson(accuracy * n, n),
             "margin": accuracy - 0.5, "margin_ci95": [0.0, 1.0], "loss": 0.7 - accuracy / 4,
             "null_loss": 0.693, "drift_chosen": 1.0, "drift_rejected": -2.0}  # fmt: skip
    return {"step": step, "epochs": epochs, "train": stats, "validation": {**stats, "n": 5}}


def test_the_learning_section_and_plot_show_each_cells_whole_set_accuracy(tmp_path):
    results = synthetic(gold=None)
    for c in results["cells"]:
        if c["strategy"] == "rpo":  # dpo_count's cells trained before it was measured
            c["train"]["learning"] = [_point(0, 0, 0.5), _point(4, 1, 0.75), _point(8, 2, 0.9)]
    report.write(results, tmp_path)
    md = (tmp_path / "report.md").read_text()
    section = md.split("## Did training learn?")[1].split("\n## ")[0]
    rows = _table(md, "## Did training learn?")
    assert len(rows) == len(results["cells"]) and "0.5 is what a model that learned" in section
    rpo = next(r for r in rows if r["strategy"] == "rpo")
    lo, hi = (f"{x:.2f}" for x in wilson(18, 20))
    assert rpo["epochs"] == "2" and rpo["train accuracy"] == f"0.90 [{lo}, {hi}] (n=20)"
    assert rpo["loss (null)"] == "0.475 (0.693)" and rpo["drift chosen / rejected"] == "+1.0 / -2.0"
    dpo = next(r for r in rows if r["strategy"] == "dpo_count")
    assert dpo["train accuracy"] == dpo["validation accuracy"] == "-"  # not measured
    saved = json.loads((tmp_path / "results.json").read_text())["learning"]
    assert [r["end"]["step"] if r["end"] else None for r in saved] == [
        8 if c["strategy"] == "rpo" else None for c in results["cells"]
    ]
    assert (tmp_path / "learning.png").stat().st_size > 1000 and "](learning.png)" in md


def test_a_report_whose_cells_measured_no_learning_says_so(tmp_path):
    report.write(synthetic(gold=None), tmp_path)  # trained before learning was measured
    section = (tmp_path / "report.md").read_text().split("## Did training learn?")[1]
    assert section.split("\n\n")[1].startswith("**Not measured: every cell here was trained")
    assert not (tmp_path / "learning.png").exists()


def test_the_learning_gate_withholds_a_verdict_where_a_side_did_not_learn(tmp_path):
    results = synthetic(shift={"rpo": 5.0})
    for c in results["cells"]:  # dpo_count's seed 1 at p=0.2 learned nothing
        if (c["strategy"], c["noise"], c["seed"]) == ("dpo_count", 0.2, 1):
            c["train"]["learning"][-1]["gold"] = _gold(0.53)
    md = report.write(results, tmp_path).read_text()
    first = md.split("\n\n")[1]
    assert first.count(f"**{analysis.DETECTED}**") == 1  # p=0: both learned
    lo, hi = wilson(0.53 * 200, 200)
    gated = (f"**inconclusive: dpo_count did not learn (gold accuracy 0.53 [{lo:.2f}, "
             f"{hi:.2f}], seed 1)** (statistically: detected).")  # fmt: skip
    assert gated in first
    assert "Learning: rpo learned (gold accuracy 0.80" in first
    assert "`dpo_count` scored" in first and "did not learn)" in first  # its Δ vs base, labelled
    saved = json.loads((tmp_path / "results.json").read_text())["analysis"]
    verdicts = {v["noise"]: v for v in saved["verdicts"]}
    assert verdicts[0.2]["statistical_verdict"] == analysis.DETECTED
    assert verdicts[0.2]["learning"]["dpo_count"]["status"] == analysis.NOT_LEARNED
    assert (
        verdicts[0.0]["verdict"] == analysis.DETECTED and "statistical_verdict" not in verdicts[0.0]
    )
    # cells trained before learning was measured: no verdict between trained strategies
    md = report.write(synthetic(shift={"rpo": 5.0}, gold=None), tmp_path).read_text()
    assert "**inconclusive: rpo: learning not measured (no gold set); dpo_count: learning" in md


def test_the_threshold_is_a_setting_and_the_placebo_is_compared(tmp_path):
    results = synthetic(shift={"rpo": 5.0}, strategies=("dpo_count", "rpo", "dpo_shuffled"))
    results["config"]["analysis"]["learning_threshold"] = 0.8  # 0.8 [0.74, 0.85] is not above
    saved = analysis.analyze(results)
    assert all(v["verdict"].startswith(analysis.INCONCLUSIVE) for v in saved["verdicts"])
    placebo = {(r["strategy"], r["noise"]) for r in saved["vs_placebo"]}
    assert placebo == {("rpo", 0.0), ("rpo", 0.2)}  # the reference is compared with it already
    md = report.write(synthetic(shift={"rpo": 5.0}, strategies=("dpo_count", "rpo",
                                "dpo_shuffled")), tmp_path).read_text()  # fmt: skip
    assert "Against the placebo `dpo_shuffled` (pairs without a preference): `rpo` scored" in md


def test_nominal_size_and_family_come_from_the_name():
    assert analysis.nominal_size("smollm2-135m") == (135e6, "smollm2")
    assert analysis.nominal_size("qwen2.5-coder-1.5b") == (1.5e9, "qwen2.5-coder")
    assert analysis.nominal_size("meta-llama/Llama-3.1-8B-Instruct") == (8e9, "Llama-3.1-Instruct")
    assert analysis.nominal_size("gpt2") == (None, "gpt2")


def test_the_model_size_axis_has_its_section_and_plot(tmp_path):
    ladder = ("smollm2-135m", "qwen2.5-coder-0.5b")
    results = synthetic(shift={"rpo": 5.0}, models=ladder, base_only=("qwen2.5-coder-1.5b",))
    rng = np.random.default_rng(1)
    for tasks in results["base"].values():  # the conditionality index of each base model
        tasks["conditionality"] = {
            "metrics": {"conditionality": 0.1},
            "per_prompt": list(rng.choice([-1.0, 0.0, 1.0], 60)),
        }
    for c in results["cells"]:  # the 0.5B's rpo learned nothing
        if (c["model"], c["strategy"]) == ("qwen2.5-coder-0.5b", "rpo"):
            c["train"]["learning"][-1]["gold"] = _gold(0.5)
    md = report.write(results, tmp_path).read_text()
    section = md.split("## Model size")[1].split("\n## ")[0]
    assert "Size and family are confounded: the ladder mixes qwen2.5-coder, smollm2" in section
    rows = [r for r in _table(md, "## Model size") if r["model"]]
    assert [(r["model"], r["size"]) for r in rows] == [
        ("smollm2-135m", "135M"), ("smollm2-135m", "135M"),
        ("qwen2.5-coder-0.5b", "500M"), ("qwen2.5-coder-0.5b", "500M"),
        ("qwen2.5-coder-1.5b", "1.5B")]  # fmt: skip
    assert [r["verdict"].split(":")[0] for r in rows] == [
        analysis.DETECTED, analysis.DETECTED, analysis.INCONCLUSIVE, analysis.INCONCLUSIVE,
        "evaluated untrained only"]  # fmt: skip
    assert all(re.fullmatch(r"-?\d+\.\d \[-?\d+\.\d, -?\d+\.\d\]", r["base conditionality"])
               for r in rows)  # fmt: skip
    assert (tmp_path / "size_axis.png").stat().st_size > 1000 and "](size_axis.png)" in md
    one = synthetic()  # one model: no size axis
    md = report.write(one, tmp_path / "one").read_text()
    assert "## Model size" not in md and not (tmp_path / "one" / "size_axis.png").exists()
