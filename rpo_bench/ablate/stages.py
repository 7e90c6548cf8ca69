"""The ablation's stages and the files each declares in its folder: what later stages and
the report read (their schemas: docs/architecture.md). The runner wires a stage's inputs to
its key, its work and these outputs; a stage that finishes without one of them fails there,
naming it, instead of a later stage failing on a missing file."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpo_bench.files import write_atomic
from rpo_bench.jsonl import read_jsonl, write_jsonl
from rpo_bench.outputs import (
    TRAIN_FINAL,
    TRAIN_LEARNING,
    TRAIN_LOG,
    TRAIN_SUMMARY,
    stats_path,
)
from rpo_bench.paths import REPO_ROOT
from rpo_bench.rollout.settings import GenerationSettings


@dataclass(frozen=True)
class Stage:
    """A stage kind (its store folder), the file the next stage reads, the other files it
    always writes, and those it writes only sometimes (an LLM judge's counts)."""

    kind: str
    output: str
    also: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def path(self, folder: Path, name: str | None = None) -> Path:
        """A declared file of this stage's finished `folder` (default: its output)."""
        name = name or self.output
        if name not in (self.output, *self.also, *self.optional):
            raise KeyError(f"stage {self.kind!r} declares no file {name!r}")
        return folder / name

    def check(self, folder: Path) -> None:
        """Raise unless the work wrote every file it must."""
        missing = [n for n in (self.output, *self.also) if not (folder / n).exists()]
        if missing:
            raise RuntimeError(f"stage {self.kind!r} finished without {', '.join(missing)}")


JUDGING = "judging.json"  # an LLM judge's counts, beside the samples it judged
TRIGGERED = "triggered.json"  # the triggered filter's counts, beside the judged samples
SYSTEM_PROMPTS = "system_prompts.jsonl"  # free text: the system prompts a teacher wrote
GENERATED = "generated.json"  # ... and how many of its answers were rejected
PAIR_STATS = stats_path("pairs.jsonl").name

CONVERSATIONS = Stage("conversations", "conversations.jsonl", optional=(SYSTEM_PROMPTS, GENERATED))
SAMPLES = Stage("samples", "samples.jsonl", optional=(JUDGING,))
JUDGED = Stage("judged", "samples.jsonl", optional=(TRIGGERED,))
PAIRS = Stage("pairs", "pairs.jsonl", also=(PAIR_STATS,))
TRAIN = Stage("train", TRAIN_FINAL, also=(TRAIN_LOG, TRAIN_SUMMARY), optional=(TRAIN_LEARNING,))
EVAL = Stage("eval", "eval.json")
GOLD = Stage("gold", "pairs.jsonl", also=("samples.jsonl", PAIR_STATS))


# --- the stages' work ---------------------------------------------------------------------
# Each takes the stage's folder, the run's `Context` and exactly the arguments its key is
# built from (`keys.inputs_of`): the runner passes nothing else, so a key cannot leave out
# what the work reads. The logic they call lives in the stages' own packages.


class Backends:
    """Local generation engines, one per (model, engine settings), kept for reuse: the base
    model samples once and is evaluated with the same weights in memory."""

    def __init__(self) -> None:
        self._kept: dict[tuple, Any] = {}

    def get(self, model: str, backend: str, engine: str, batch_size: int, keep: bool = True) -> Any:
        key = (model, backend, engine, batch_size)
        if key in self._kept:
            return self._kept[key]
        if backend == "vllm":
            from rpo_bench.rollout.vllm import VLLMBackend

            made = VLLMBackend(model)
        else:
            from rpo_bench.rollout.hf import HFBackend
            from rpo_bench.rollout.settings import engine as engine_of

            made = HFBackend(model, batch_size=batch_size, engine=engine_of(engine))
        if keep:
            self._kept[key] = made
        return made


@dataclass
class Context:
    """What a stage's work uses besides its keyed arguments, none of which changes its
    result: the store (where LLM answers are cached), whether to resume a partial stage,
    the console, the engines in memory."""

    root: Path
    resume: bool = False
    progress: Any = None
    backends: Backends = field(default_factory=Backends)

    def printing(self) -> Any:
        """Print above the progress bars and into the run's log."""
        return self.progress.printing() if self.progress else contextlib.nullcontext()


def make_conversations(
    folder: Path, ctx: Context, *, data: Any, split: str, n: int, file_sha256: str | None
) -> None:
    """A split's conversations: verifiable constraints on seed tasks, or free-text system
    prompts (a file's, whose contents the key holds, or a teacher's)."""
    from rpo_bench.data.conversations import write_conversations
    from rpo_bench.data.verifiable import build

    if data.kind == "freetext":
        convs = _freetext(folder, ctx, data, split, file_sha256)
    else:
        convs = build(n, data.turns, data.constraints_per_turn, data.seed, split,
                      data.constraint_slot)  # fmt: skip
    write_conversations(CONVERSATIONS.path(folder), convs)


def _freetext(folder: Path, ctx: Context, d: Any, split: str, sha256: str | None) -> list:
    from rpo_bench.ablate import builders
    from rpo_bench.data import freetext

    file = data_file(d.file) if d.file is not None else None
    if file is not None and file_digest(file) != sha256:
        raise RuntimeError(f"{file} changed while the run was reading it; run again")
    prompts, source, counts = builders.system_prompts(d, ctx.root, file)
    if counts is not None:  # written by a teacher: kept, with its rejected answers' count
        freetext.write_system_prompts(CONVERSATIONS.path(folder, SYSTEM_PROMPTS), prompts)
        write_atomic(CONVERSATIONS.path(folder, GENERATED), json.dumps(counts))
    return freetext.split_conversations(prompts, split, d.n_conversations,
                                        d.heldout_conversations, source)  # fmt: skip


def sample_responses(
    folder: Path, ctx: Context, *, conversations: Path, model: str, sampling: Any, judge: Any
) -> None:
    """n responses per turn of the training conversations, judged (the exact judge's
    verdicts: noise comes in the judged stage)."""
    rows, judging = _sampled(ctx, CONVERSATIONS.path(conversations), model, sampling, judge)
    write_jsonl(SAMPLES.path(folder), rows)
    if hasattr(judging, "counts"):  # an LLM judge: what judging took, and what it left
        counts = {"judge": judging.name, **judging.counts}
        if counts["responses"] and not counts["judged"]:
            from rpo_bench.judge import NothingJudged

            raise NothingJudged(
                f"judge {judging.name} could judge none of the {counts['responses']} "
                "responses, so no pair can be built; see the log for its errors (answers it "
                "gave are kept in the store's judge cache)"
            )
        write_atomic(SAMPLES.path(folder, JUDGING), json.dumps(counts))


def _sampled(
    ctx: Context, conversations: Path, model: str, s: Any, judge: Any, limit: int | None = None
) -> tuple[list[dict[str, Any]], Any]:
    """(samples rows, the judge that judged them) of the first `limit` conversations."""
    from rpo_bench.ablate import builders
    from rpo_bench.data.conversations import read_conversations
    from rpo_bench.data.sample import sample

    def local(name: str) -> Any:
        return ctx.backends.get(name, s.backend, s.engine, s.batch_size)

    settings = GenerationSettings.of(s)
    judging = builders.judge(judge, ctx.root)
    rows = sample(read_conversations(conversations)[:limit], local(model), settings,
                  judge=judging, history=s.history, teacher=builders.teacher(s, local),
                  pool=s.pool)  # fmt: skip
    return rows, judging


def gold_pairs(
    folder: Path, ctx: Context, *, conversations: Path, model: str, sampling: Any, judge: Any,
    gold: Any,
) -> None:  # fmt: skip
    """The gold set (`config.Gold`): held-out turns sampled `gold.n` times by `model`,
    judged exactly, and paired by `dpo_count`'s rule on those true verdicts under the
    original prompt. Its history is the policy's best reply, whatever `sampling.history`."""
    import dataclasses

    from rpo_bench.pairs import run

    s = dataclasses.replace(sampling, n=gold.n, history="best", teacher=None, pool="policy")
    heldout = CONVERSATIONS.path(conversations)
    rows, _ = _sampled(ctx, heldout, model, s, judge, gold.conversations)
    write_jsonl(GOLD.path(folder, "samples.jsonl"), rows)
    run(GOLD.path(folder, "samples.jsonl"), "dpo_count", GOLD.path(folder),
        max_pairs_per_turn=gold.max_pairs_per_turn)  # fmt: skip


def judge_with_noise(
    folder: Path, ctx: Context, *, samples: Path, noise: float, seed: int,
    triggered: dict[str, Any] | None,
) -> None:  # fmt: skip
    """The samples' verdicts flipped with probability `noise` (true ones kept); with a
    `triggered` filter, first restricted to the constraints each query triggers."""
    from rpo_bench.judge.noise import noisy_rows

    rows = read_jsonl(SAMPLES.path(samples))
    if triggered is not None:
        from rpo_bench.ablate import builders
        from rpo_bench.judge.triggered import restrict

        selector = builders.selector(triggered, ctx.root)
        rows = restrict(rows, selector)
        counts = {"turns": len(rows), "calls": selector.calls, "unparsed": selector.unparsed}
        write_atomic(JUDGED.path(folder, TRIGGERED), json.dumps(counts))
    write_jsonl(JUDGED.path(folder), noisy_rows(rows, noise, seed))


def build_pairs(
    folder: Path, ctx: Context, *, judged: Path, strategy: str, pairs: Any, seed: int
) -> None:
    """A pair strategy's pairs (or SFT/KTO examples) from the judged samples."""
    from rpo_bench.ablate import builders
    from rpo_bench.pairs import run

    run(JUDGED.path(judged), strategy, PAIRS.path(folder), min_margin=pairs.min_margin,
        max_pairs_per_turn=pairs.max_pairs_per_turn, seed=seed,
        keep_unanimous=pairs.keep_unanimous,
        reverser=builders.reverser(pairs.reverser, ctx.root))  # fmt: skip


def train_model(
    folder: Path, ctx: Context, *, pairs: Path, train: dict[str, Any], seed: int, model: str,
    gold: Path | None = None,
) -> None:  # fmt: skip
    """The model trained on the pairs (in `train.processes` processes when above 1); its
    learning is measured on the `gold` set's pairs too, where there is one."""
    from rpo_bench import models
    from rpo_bench.ablate.config import trainer_keys
    from rpo_bench.train import TrainConfig
    from rpo_bench.train.trainer import train as run_training

    settings = {**trainer_keys(train), "model": models.resolve(model), "out": str(folder),
                "seed": seed}  # fmt: skip
    if gold is not None:
        settings["gold"] = str(GOLD.path(gold))
    cfg = TrainConfig.from_dict(settings)
    with ctx.printing():  # the trainer's summary line goes above the bars and into the log
        if train.get("processes", 1) > 1:
            from rpo_bench.train.launch import train_in_processes

            launch = (train["processes"], train.get("accelerate_config"))
            print(train_in_processes(PAIRS.path(pairs), cfg, *launch, resume=ctx.resume))
        else:
            run_training(PAIRS.path(pairs), cfg, resume=ctx.resume, quiet=True)


def evaluate_model(
    folder: Path, ctx: Context, *, model: Path | str, eval: Any, heldout: Path, judge: Any
) -> None:
    """A model's scores on each task of `eval.tasks`: a trained model's folder (`model` a
    train stage), or the untrained model by name; `judge` scores free-text held-out turns."""
    from rpo_bench.ablate import builders
    from rpo_bench.evaluate import heldout as heldout_task
    from rpo_bench.evaluate.harness import run_task
    from rpo_bench.evaluate.metrics import aggregate, prompt_score
    from rpo_bench.evaluate.tasks import CONDITIONALITY, HELDOUT, task

    e, trained = eval, isinstance(model, Path)
    path = str(TRAIN.path(model)) if trained else model
    engine = ctx.backends.get(path, e.backend, e.engine, e.batch_size, keep=not trained)
    settings = GenerationSettings(max_new_tokens=e.max_new_tokens)
    results = {}
    for name in e.tasks:
        if task(name).kind == CONDITIONALITY:  # its own metrics: J, a score per item
            from rpo_bench.evaluate import conditionality

            rows = conditionality.play(CONVERSATIONS.path(heldout), engine, settings)
            write_jsonl(folder / f"samples_{name}.jsonl", rows)
            results[name] = conditionality.index(rows, e.bootstrap)
            continue
        if task(name).kind == HELDOUT:
            judging = builders.judge(judge, ctx.root) if judge is not None else None
            rows = heldout_task.play(CONVERSATIONS.path(heldout), engine, settings, judging)
        elif task(name).engine:
            from rpo_bench.evaluate.tasks import single_turn

            rows = single_turn(name, engine, settings, e.limit)
        else:  # multi-turn benchmarks through lm-eval: aggregate metrics, per-document scores
            results[name] = run_task(
                name, path, folder / name, limit=e.limit, batch_size=e.batch_size,
                max_gen_toks=e.max_new_tokens, metadata=dict(e.metadata) or None,
                decoding_protocol=e.decoding)  # fmt: skip
            continue
        write_jsonl(folder / f"samples_{name}.jsonl", rows)
        judged = [r for r in rows if not r.get("unjudged")]
        results[name] = {
            **({"unjudged": len(rows) - len(judged)} if len(judged) < len(rows) else {}),
            "metrics": aggregate(judged),
            "per_prompt": [prompt_score(r) for r in rows],
        }
    write_atomic(EVAL.path(folder), json.dumps(results, indent=1))


def data_file(name: str) -> Path:
    """A config's data file: as given, else under the repository (presets name repo paths)."""
    path = Path(name)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
