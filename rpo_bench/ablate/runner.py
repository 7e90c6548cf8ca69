"""The ablation pipeline, one stage per function, each stored under a key of its inputs.

conversations -> samples (once per model) -> judged (per noise p and seed) -> pairs (per
strategy; SFT/KTO examples for the baselines) -> train -> evaluate; the untrained model is
evaluated once per model. Sampling keeps the "golden" history chosen with the exact judge,
so one sampling pass serves every noise level; noise then flips the verdicts the pairs are
built from (true ones kept).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from rpo_bench import models
from rpo_bench.ablate import builders, evaluate, report
from rpo_bench.ablate.config import AblationConfig, Cell, trainer_keys
from rpo_bench.ablate.stages import (
    CONVERSATIONS,
    EVAL,
    GENERATED,
    JUDGED,
    JUDGING,
    PAIR_STATS,
    PAIRS,
    SAMPLES,
    SYSTEM_PROMPTS,
    TRAIN,
    TRAIN_LOG,
    TRAIN_SUMMARY,
    TRIGGERED,
    Stage,
)
from rpo_bench.ablate.store import Store
from rpo_bench.files import write_atomic
from rpo_bench.jsonl import read_jsonl, write_jsonl
from rpo_bench.paths import REPO_ROOT
from rpo_bench.rollout.settings import GenerationSettings

# Config fields added after stores existed: at these values they stay out of stage keys,
# so stages stored before them keep their keys.
ADDED = {
    "Data": {"kind": "verifiable", "file": None, "generate": None},
    "Judge": {"options": {}, "triggered": "all"},
    "Pairs": {"reverser": None},
    "Sampling": {"teacher": None, "pool": "policy"},
}


# Config fields renamed since: stage keys keep the old name.
RENAMED = {"Pairs": {"keep_unanimous": "keep_untriggered"}}


def keyed(section: Any) -> dict[str, Any]:
    """A config section as it enters a stage key."""
    name = type(section).__name__
    added, renamed = ADDED.get(name, {}), RENAMED.get(name, {})
    return {renamed.get(k, k): v for k, v in dataclasses.asdict(section).items()
            if not (k in added and v == added[k])}  # fmt: skip


def data_file(name: str) -> Path:
    """A config's data file: as given, else under the repository (presets name repo paths)."""
    path = Path(name)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


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
        self._backends: dict[str, Any] = {}

    # --- stages ---------------------------------------------------------------------------

    def conversations(self, split: str) -> tuple[Path, dict]:
        d = self.cfg.data
        n = d.n_conversations if split == "train" else d.heldout_conversations
        inputs = {"data": keyed(d), "split": split, "n": n}
        if d.file is not None:  # the file's contents, not only its name
            inputs["file_sha256"] = hashlib.sha256(data_file(d.file).read_bytes()).hexdigest()

        def work(folder: Path) -> None:
            from rpo_bench.data.conversations import build, write_conversations

            if d.kind == "freetext":
                convs = self._freetext(split, folder)
            else:
                convs = build(n, d.turns, d.constraints_per_turn, d.seed, split, d.constraint_slot)
            write_conversations(CONVERSATIONS.path(folder), convs)

        return self._stage(CONVERSATIONS, "conversations", inputs, work), inputs

    def samples(self, model: str) -> tuple[Path, dict]:
        convs, conv_inputs = self.conversations("train")
        s = self.cfg.sampling
        inputs = {
            "conversations": conv_inputs,
            "model": model,
            "sampling": keyed(s),
            # the triggered filter works on the stored samples (the judged stage)
            "judge": {k: v for k, v in keyed(self.cfg.judge).items() if k != "triggered"},
        }

        def work(folder: Path) -> None:
            from rpo_bench.data.conversations import read_conversations
            from rpo_bench.data.sample import sample

            settings = GenerationSettings(s.temperature, s.top_p, s.max_new_tokens, s.seed, s.n)
            judge = self._judge()
            rows = sample(
                read_conversations(CONVERSATIONS.path(convs)),
                self._backend(model),
                settings,
                judge=judge,
                history=s.history,
                teacher=builders.teacher(s, self._backend),
                pool=s.pool,
            )
            write_jsonl(SAMPLES.path(folder), rows)
            if hasattr(judge, "counts"):  # an LLM judge: what judging took, and what it left
                counts = {"judge": judge.name, **judge.counts}
                write_atomic(SAMPLES.path(folder, JUDGING), json.dumps(counts))

        return self._stage(SAMPLES, f"samples:{model}", inputs, work), inputs

    def judged(self, model: str, noise: float, seed: int) -> tuple[Path, dict]:
        samples, sample_inputs = self.samples(model)
        inputs = {"samples": sample_inputs, "noise": noise, "seed": seed}
        j = self.cfg.judge
        if j.triggered != "all":
            inputs["triggered"] = {"by": j.triggered, "model": j.model, "base_url": j.base_url}

        def work(folder: Path) -> None:
            from rpo_bench.judge.noise import noisy_rows

            rows = read_jsonl(SAMPLES.path(samples))
            if j.triggered == "llm":
                from rpo_bench.judge.triggered import restrict

                selector = builders.selector(j, self.store.root)
                rows = restrict(rows, selector)
                counts = {"turns": len(rows), "calls": selector.calls,
                          "unparsed": selector.unparsed}  # fmt: skip
                write_atomic(JUDGED.path(folder, TRIGGERED), json.dumps(counts))
            write_jsonl(JUDGED.path(folder), noisy_rows(rows, noise, seed))

        return self._stage(JUDGED, f"judge:p{noise:g}", inputs, work), inputs

    def pairs(self, cell: Cell) -> tuple[Path, dict]:
        judged, judged_inputs = self.judged(cell.model, cell.noise, cell.seed)
        p, name = self.cfg.pairs, self.cfg.pair_strategy(cell.strategy)  # variants share pairs
        if cell.min_margin is not None:  # the grid's axis; otherwise the key is as before
            p = dataclasses.replace(p, min_margin=cell.min_margin)
        inputs = {
            "judged": judged_inputs,
            "strategy": name,
            "pairs": keyed(p),
            "seed": cell.seed,
        }

        def work(folder: Path) -> None:
            from rpo_bench.pairs import run

            run(
                JUDGED.path(judged),
                name,
                PAIRS.path(folder),
                min_margin=p.min_margin,
                max_pairs_per_turn=p.max_pairs_per_turn,
                seed=cell.seed,
                keep_unanimous=p.keep_unanimous,
                reverser=builders.reverser(p.reverser, self.store.root),
            )

        return self._stage(PAIRS, f"pairs:{name}", inputs, work), inputs

    def train(self, cell: Cell) -> tuple[Path | None, dict]:
        """The trained model's folder, or None when the strategy produced no examples."""
        pairs, pair_inputs = self.pairs(cell)
        if self.examples(pairs) == 0:
            return None, pair_inputs
        train = self.cfg.train_settings(cell.strategy, cell.margin_mode)
        inputs = {"pairs": pair_inputs, "train": train, "seed": cell.seed}

        def work(folder: Path) -> None:
            from rpo_bench.train import TrainConfig
            from rpo_bench.train.trainer import train as run_training

            settings = {**trainer_keys(train), "model": models.resolve(cell.model),
                        "out": str(folder), "seed": cell.seed}  # fmt: skip
            cfg = TrainConfig.from_dict(settings)
            # the trainer's summary line goes above the bars and into the run's log
            printing = self.progress.printing() if self.progress else contextlib.nullcontext()
            with printing:
                if train.get("processes", 1) > 1:
                    from rpo_bench.train.trainer import train_in_processes

                    launch = (train["processes"], train.get("accelerate_config"))
                    print(train_in_processes(PAIRS.path(pairs), cfg, *launch,
                                             resume=self.store.resume))  # fmt: skip
                else:
                    run_training(PAIRS.path(pairs), cfg, resume=self.store.resume, quiet=True)

        return self._stage(TRAIN, f"train:{cell.name}", inputs, work), inputs

    def evaluate(self, model: str, trained: Path | None, upstream: dict) -> dict[str, Any]:
        e = self.cfg.eval
        heldout, heldout_inputs = self.conversations("heldout")
        inputs = {"model": upstream, "eval": dataclasses.asdict(e), "heldout": heldout_inputs}
        if self.cfg.data.kind == "freetext":  # held-out turns are scored by the LLM judge
            inputs["judge"] = keyed(self.cfg.judge)

        def work(folder: Path) -> None:
            path = str(TRAIN.path(trained)) if trained else model
            backend = self._backend(path, cache=trained is None)
            settings = GenerationSettings(max_new_tokens=e.max_new_tokens)
            results = {}
            for task in e.tasks:
                if task == "heldout":
                    rows = self._heldout(backend, settings, CONVERSATIONS.path(heldout))
                elif task in evaluate.SINGLE_TURN:
                    rows = evaluate.single_turn(task, backend, settings, e.limit)
                else:  # judged multi-turn benchmarks: through lm-eval, aggregate metrics only
                    results[task] = evaluate.lm_eval_task(task, path, e, folder / task)
                    continue
                write_jsonl(folder / f"samples_{task}.jsonl", rows)
                judged = [r for r in rows if not r.get("unjudged")]
                results[task] = {
                    **({"unjudged": len(rows) - len(judged)} if len(judged) < len(rows) else {}),
                    "metrics": evaluate.aggregate(judged),
                    "per_prompt": [evaluate.prompt_score(r) for r in rows],
                }
            write_atomic(EVAL.path(folder), json.dumps(results, indent=1))

        folder = self._stage(EVAL, f"eval:{Path(str(trained or model)).name}", inputs, work)
        return json.loads(EVAL.path(folder).read_text())

    # --- the grid -------------------------------------------------------------------------

    def base(self, model: str) -> dict[str, Any]:
        """The untrained model's evaluation, the reference row."""
        return self.evaluate(model, None, {"base": model})

    def cell(self, cell: Cell) -> dict[str, Any]:
        """One grid cell's pairs, training and evaluation (the base model's, untrained)."""
        self._advance(cell.name)
        trained, upstream = self.train(cell)
        pairs, _ = self.pairs(cell)
        return {
            **cell.fields(),
            "pairs": self.pair_stats(pairs),
            "train": self._train_summary(trained),
            "eval": self.evaluate(cell.model, trained, upstream)
            if trained
            else self.base(cell.model),
        }

    def tasks(self) -> list[tuple[str, Any]]:
        """The grid's independent units, in run order: each model's base evaluation, then the
        cells (`ablate.jobs` deals them out to workers)."""
        return [("base", m) for m in self.cfg.grid.model] + [("cell", c) for c in self.cfg.cells()]

    def compute(self, tasks: list[tuple[str, Any]]) -> None:
        """Compute (or reuse) the stages of these units, collecting nothing: a worker's job."""
        for kind, unit in tasks:
            self.base(unit) if kind == "base" else self.cell(unit)

    def run(self) -> dict[str, Any]:
        started = time.time()
        base = {m: self.base(m) for m in self.cfg.grid.model}
        cells = [self.cell(cell) for cell in self.cfg.cells()]
        judging = {m: json.loads(p.read_text()) for m in self.cfg.grid.model
                   if (p := SAMPLES.path(self.samples(m)[0], JUDGING)).exists()}  # fmt: skip
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

        return self.store.run(stage.kind, inputs, declared)

    def _advance(self, name: str) -> None:
        if self.progress:
            self.progress.cell(name)

    def _backend(self, model: str, cache: bool = True) -> Any:
        from rpo_bench.rollout.hf import HFBackend
        from rpo_bench.rollout.settings import engine

        if self.cfg.sampling.backend == "vllm":
            from rpo_bench.rollout.vllm import VLLMBackend

            return VLLMBackend(model)
        if not cache or model not in self._backends:
            backend = HFBackend(
                model,
                batch_size=self.cfg.sampling.batch_size,
                engine=engine(self.cfg.sampling.engine),
            )
            if not cache:
                return backend
            self._backends[model] = backend
        return self._backends[model]

    def _judge(self) -> Any:
        return builders.judge(self.cfg.judge, self.store.root)

    def _heldout(self, backend: Any, settings: GenerationSettings, path: Path) -> list[dict]:
        """Greedy replies to the held-out conversations (own history), scored per turn:
        verifiable constraints by their checkers; free-text ones by the LLM judge (strict
        and loose alike); a turn it could not judge is scored None and counted."""
        from rpo_bench.constraints import any_from_dict
        from rpo_bench.data.conversations import read_conversations
        from rpo_bench.data.sample import sample
        from rpo_bench.evaluate.verifiable import score, score_verdicts

        freetext = self.cfg.data.kind == "freetext"
        judge = self._judge() if freetext else None  # free text: judged as it is sampled
        rows = sample(read_conversations(path), backend, settings, judge=judge, history="first")
        out = []
        for row in rows:
            reply = row["responses"][0]["text"]
            if not freetext:
                constraints = [any_from_dict(c) for c in row["constraints"]]
                out.append({"key": row["id"], "reply": reply, **score(constraints, reply)})
                continue
            verdicts = row["responses"][0]["verdicts"]
            if verdicts is None:  # unjudged: neither a pass nor a fail; the row stays, so
                # every model's per-prompt scores line up, with None where unscored
                out.append({"key": row["id"], "reply": reply, "unjudged": True,
                            **dict.fromkeys(evaluate.METRICS)})  # fmt: skip
            else:
                out.append({"key": row["id"], "reply": reply, **score_verdicts(verdicts)})
        return out

    def _freetext(self, split: str, folder: Path) -> list[Any]:
        """The split's conversations of the system prompts of `data.file`, or of those the
        `data.generate` teacher writes (kept in the stage as system_prompts.jsonl, with the
        rejected answers' count)."""
        from rpo_bench.data import freetext

        d = self.cfg.data
        file = data_file(d.file) if d.file is not None else None
        prompts, source, counts = builders.system_prompts(d, self.store.root, file)
        if counts is not None:
            freetext.write_system_prompts(CONVERSATIONS.path(folder, SYSTEM_PROMPTS), prompts)
            write_atomic(CONVERSATIONS.path(folder, GENERATED), json.dumps(counts))
        return freetext.split_conversations(
            prompts, split, d.n_conversations, d.heldout_conversations, source
        )

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
        return {"log": log, "seconds": summary.get("seconds"), "steps": summary.get("steps")}

    def _provenance(self, wall: float) -> dict[str, Any]:
        import importlib.metadata as md

        stage_seconds: dict[str, float] = {}
        for timing in self.store.root.glob("*/*/timing.json"):
            if "." in timing.parent.name:  # a .partial or .stale folder
                continue
            stage = timing.parent.parent.name
            stage_seconds[stage] = stage_seconds.get(stage, 0.0) + Store.seconds(timing.parent)
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
