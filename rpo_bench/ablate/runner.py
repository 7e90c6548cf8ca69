"""The ablation pipeline, one stage per function, each stored under a key of its inputs.

conversations -> samples (once per model; per model and seed with `sampling.per_seed`) ->
judged (per noise p and seed) -> pairs (per strategy; SFT/KTO examples for the baselines)
-> train -> evaluate; the untrained model is evaluated once per model. With a `gold` set,
held-out turns are sampled once more (gold) and every training measures its learning on
those pairs. Sampling keeps the
"golden" history chosen with the exact judge, so one sampling pass serves every noise
level; noise then flips the verdicts the pairs are built from (true ones kept).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from rpo_bench.ablate import report
from rpo_bench.ablate.config import AblationConfig, Cell
from rpo_bench.ablate.keys import Upstream, inputs_of, work_args
from rpo_bench.ablate.stages import (
    CONVERSATIONS,
    EVAL,
    GOLD,
    JUDGED,
    JUDGING,
    PAIR_STATS,
    PAIRS,
    SAMPLES,
    TRAIN,
    TRAIN_LEARNING,
    TRAIN_LOG,
    TRAIN_SUMMARY,
    TRIGGERED,
    Context,
    Stage,
    build_pairs,
    data_file,
    evaluate_model,
    file_digest,
    gold_pairs,
    judge_with_noise,
    make_conversations,
    sample_responses,
    train_model,
)
from rpo_bench.ablate.store import Store
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import REPO_ROOT


class Runner:
    def __init__(
        self,
        config: AblationConfig,
        work: Path,
        resume: bool = False,
        progress=None,
        *,
        wait: bool = True,
        reuse_stale: bool = False,
    ):
        self.cfg, self.progress = config, progress
        self.store = Store(work, resume, wait=wait, reuse_stale=reuse_stale)
        self.context = Context(self.store.root, resume, progress)
        self.used: set[Path] = set()  # the stage folders this config reached (its provenance)

    # --- stages: each names the config slices its work reads, and nothing else ------------

    def conversations(self, split: str) -> Upstream:
        d = self.cfg.data
        n = d.n_conversations if split == "train" else d.heldout_conversations
        digest = file_digest(data_file(d.file)) if d.file is not None else None  # its contents
        return self._run(CONVERSATIONS, "conversations", make_conversations,
                         data=d, split=split, n=n, file_sha256=digest)  # fmt: skip

    def samples(self, model: str, seed: int) -> Upstream:
        """The model's sampled, judged responses: one pass for every grid seed, or with
        `sampling.per_seed` one per seed, sampled with the sampling seed plus the grid's."""
        s = self.cfg.sampling
        if s.per_seed:
            s = dataclasses.replace(s, seed=s.seed + seed)
        return self._run(SAMPLES, f"samples:{model}", sample_responses,
                         conversations=self.conversations("train"), model=model,
                         sampling=s, judge=self._judge_for_samples())  # fmt: skip

    def judged(self, model: str, noise: float, seed: int) -> Upstream:
        j = self.cfg.judge
        triggered = None
        if j.triggered != "all":
            triggered = {"by": j.triggered, "model": j.model, "base_url": j.base_url,
                         **({"options": j.options} if j.options else {})}  # fmt: skip
        return self._run(JUDGED, f"judge:p{noise:g}", judge_with_noise,
                         samples=self.samples(model, seed), noise=noise, seed=seed,
                         triggered=triggered)  # fmt: skip

    def gold(self) -> Upstream | None:
        """The gold set's pairs (`config.Gold`), or None without one: sampled held-out turns,
        judged exactly, ordered by their true verdicts."""
        g = self.cfg.gold
        if g is None:
            return None
        model = g.model or self.cfg.grid.model[0]
        return self._run(GOLD, f"gold:{model}", gold_pairs, conversations=self.conversations(
            "heldout"), model=model, sampling=self.cfg.sampling, judge=self._judge_for_samples(),
            gold=g)  # fmt: skip

    def pairs(self, cell: Cell) -> Upstream:
        p, name = self.cfg.pairs, self.cfg.pair_strategy(cell.strategy)  # variants share pairs
        if cell.min_margin is not None:  # the grid's axis; otherwise the key is as before
            p = dataclasses.replace(p, min_margin=cell.min_margin)
        return self._run(PAIRS, f"pairs:{name}", build_pairs,
                         judged=self.judged(cell.model, cell.noise, cell.seed), strategy=name,
                         pairs=p, seed=cell.seed)  # fmt: skip

    def train(self, cell: Cell) -> Upstream | tuple[None, dict]:
        """The trained model, or (None, the pairs' inputs) when the strategy produced no
        examples."""
        pairs = self.pairs(cell)
        if Path(pairs.folder).is_dir() and self.examples(pairs.folder) == 0:  # planned: absent
            return None, pairs.inputs
        train = self.cfg.train_settings(cell.strategy, cell.margin_mode, cell.epochs)
        # the model is in the key already, through the pairs' samples; no gold set: no key
        return self._run(TRAIN, f"train:{cell.name}", train_model, implied={"model": cell.model},
                         pairs=pairs, train=train, seed=cell.seed, gold=self.gold())  # fmt: skip

    def evaluate(self, model: Upstream) -> dict[str, Any]:
        """A model's scores: a train stage's, or an untrained model's (`Upstream(name,
        {"base": name})`)."""
        # free-text held-out turns are scored by the LLM judge (every constraint: the
        # triggered filter restricts the training samples only)
        judge = self._judge_for_samples() if self.cfg.data.kind == "freetext" else None
        folder, _ = self._run(EVAL, f"eval:{Path(str(model.folder)).name}", evaluate_model,
                              model=model, eval=self.cfg.eval,
                              heldout=self.conversations("heldout"), judge=judge)  # fmt: skip
        if self.store.planning:
            return {}
        return json.loads(EVAL.path(folder).read_text())

    # --- the grid -------------------------------------------------------------------------

    def base(self, model: str) -> dict[str, Any]:
        """The untrained model's evaluation, the reference row."""
        return self.evaluate(Upstream(model, {"base": model}))

    def cell(self, cell: Cell) -> dict[str, Any]:
        """One grid cell's pairs, training and evaluation (the base model's, untrained)."""
        self._advance(cell.name)
        trained = self.train(cell)
        pairs = self.pairs(cell)
        return {
            **cell.fields(),
            "pairs": self.pair_stats(pairs.folder),
            "train": self._train_summary(trained[0]),
            "eval": self.evaluate(trained) if trained[0] else self.base(cell.model),
        }

    def tasks(self) -> list[tuple[str, Any]]:
        """The grid's independent units, in run order: each model's base evaluation, then the
        cells (`ablate.jobs` deals them out to workers)."""
        bases = [("base", m) for m in self.cfg.base_models()]
        return bases + [("cell", c) for c in self._cells()]

    def _cells(self) -> list[Cell]:
        """The cells in run order: smaller training budgets first (stable), so a dose-response
        grid that is stopped early has every strategy at its smaller budgets."""
        return sorted(self.cfg.cells(), key=lambda c: c.epochs or 0)

    def plan(self) -> list[Path]:
        """The stage folders this run would compute, in order, computing none. A stage
        after one still to compute is listed as if that one made training examples."""
        self.store.planning = True
        try:
            for kind, unit in self.tasks():
                if kind == "base":
                    self.base(unit)
                elif (trained := self.train(unit))[0] is not None:
                    self.evaluate(trained)
            return list(self.store.planned)
        finally:
            self.store.planning = False

    def compute(self, tasks: list[tuple[str, Any]]) -> None:
        """Compute (or reuse) the stages of these units, collecting nothing: a worker's job."""
        for kind, unit in tasks:
            self.base(unit) if kind == "base" else self.cell(unit)

    def run(self) -> dict[str, Any]:
        started = time.time()
        base = {m: self.base(m) for m in self.cfg.base_models()}
        done = {cell: self.cell(cell) for cell in self._cells()}
        cells = [done[cell] for cell in self.cfg.cells()]  # results in the grid's order
        first = self.cfg.grid.seed[0]  # with per_seed: the first seed's pass, as an example
        judging = {m: json.loads(p.read_text()) for m in self.cfg.grid.model
                   if (p := SAMPLES.path(self.samples(m, first)[0], JUDGING)).exists()}  # fmt: skip
        for m in judging:  # the triggered filter's counts (the same for every noise and seed)
            g = self.cfg.grid
            path = JUDGED.path(self.judged(m, g.noise[0], g.seed[0])[0], TRIGGERED)
            if path.exists():
                judging[m]["triggered"] = json.loads(path.read_text())
        return {
            "config": self.cfg.to_dict(),
            "base": base,
            "cells": cells,
            **({"judging": judging} if judging else {}),
            "provenance": self._provenance(time.time() - started),
        }

    # --- helpers --------------------------------------------------------------------------

    def _stage(self, stage: Stage, label: str, inputs: dict, work) -> Path:
        """The stage's folder under the key of its inputs, its work done (or reused) there."""
        if self.progress and not self.store.done(stage.kind, inputs):
            self.progress.stage(label)

        def declared(folder: Path) -> None:
            work(folder)
            stage.check(folder)  # a missing output fails here, not in a later stage

        folder = self.store.run(stage.kind, inputs, declared)
        self.used.add(folder)
        return folder

    def _run(self, stage: Stage, label: str, work, implied: dict | None = None,
             **args: Any) -> Upstream:  # fmt: skip
        """Stage `work` on exactly `args`, under the key of those same arguments (`keys`).
        `implied`: arguments the key already holds through an upstream stage (checked)."""
        inputs = inputs_of(args)
        for name, value in (implied or {}).items():
            if not _holds(inputs, name, value):
                raise ValueError(f"stage {stage.kind!r}: its key does not hold {name}={value!r}")
        given = {**work_args(args), **(implied or {})}
        folder = self._stage(stage, label, inputs, lambda f: work(f, self.context, **given))
        return Upstream(folder, inputs)

    def _judge_for_samples(self) -> Any:
        """The judge as it judges replies: the triggered filter works on the stored samples
        (the judged stage), so it is no part of judging a reply."""
        return dataclasses.replace(self.cfg.judge, triggered="all")

    def _advance(self, name: str) -> None:
        if self.progress:
            self.progress.cell(name)

    @staticmethod
    def pair_stats(folder: Path) -> dict[str, Any]:
        return json.loads(PAIRS.path(folder, PAIR_STATS).read_text())

    @classmethod
    def examples(cls, folder: Path) -> int:
        """Training examples of a pairs stage, of any kind (`pairs`: written before kinds)."""
        stats = cls.pair_stats(folder)
        return stats.get("examples", stats.get("pairs", 0))

    @staticmethod
    def _train_summary(folder: Path | None) -> dict[str, Any]:
        if folder is None:
            return {"skipped": "no pairs", "log": []}
        log = [
            {
                "step": r["step"],
                "loss": r["loss"],
                "reward_margin": r.get("rewards/margins", float("nan")),
            }
            for r in read_jsonl(TRAIN.path(folder, TRAIN_LOG))
            if "loss" in r
        ]
        summary = json.loads(TRAIN.path(folder, TRAIN_SUMMARY).read_text())
        learned = TRAIN.path(folder, TRAIN_LEARNING)  # absent: trained before it was measured
        learning = json.loads(learned.read_text())["points"] if learned.exists() else []
        return {"log": log, "seconds": summary.get("seconds"), "steps": summary.get("steps"),
                "learning": learning}  # fmt: skip

    def _provenance(self, wall: float) -> dict[str, Any]:
        import importlib.metadata as md

        stage_seconds: dict[str, float] = {}
        for folder in sorted(self.used):  # this config's stages, not the whole (shared) store
            stage = folder.parent.name
            stage_seconds[stage] = stage_seconds.get(stage, 0.0) + Store.seconds(folder)
        names = ("rpo-bench", "torch", "transformers", "peft", "accelerate", "lm-eval")
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
            ).stdout.strip()
        except OSError:
            commit = "unknown"
        return {
            "git_commit": commit or "unknown",
            "wall_seconds": wall,
            "stage_seconds": stage_seconds,
            "computed_this_run": self.store.computed,
            # reused by --reuse-stale although the code that computes them has changed
            "stale_stages": self.store.stale,
            "versions": {n: md.version(n) for n in names} | {"python": platform.python_version()},
        }


def write_report(results: dict[str, Any], out: Path) -> Path:
    return report.write(results, out)


def _holds(inputs: Any, name: str, value: Any) -> bool:
    """Whether a key's inputs hold `name: value` at some depth (through an upstream's)."""
    if isinstance(inputs, dict):
        return inputs.get(name, object()) == value or any(
            _holds(v, name, value) for v in inputs.values()
        )
    return False
