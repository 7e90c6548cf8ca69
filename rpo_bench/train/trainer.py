"""The training recipe: set up a run (accelerator, examples, model, optimizer, reference
log-probs, resume), run the loop, save the model. Processes and the CLI: `launch`.
"""

from __future__ import annotations

import functools
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rpo_bench import models
from rpo_bench.files import atomic_folder, write_atomic
from rpo_bench.outputs import TRAIN_FINAL, TRAIN_LEARNING, TRAIN_SUMMARY
from rpo_bench.train import checkpoint
from rpo_bench.train.batches import Batch, Step, make_batches, schedule
from rpo_bench.train.config import TrainConfig, example_kind
from rpo_bench.train.examples import read_pairs, turn_of
from rpo_bench.train.learning import LearningLog, MeasuredSet
from rpo_bench.train.logps import SequenceScorer, causal_lm
from rpo_bench.train.loop import Run, train_loop
from rpo_bench.train.progress import RunLog
from rpo_bench.train.reference import Computation, reference_logps, shared_reference
from rpo_bench.train.tokenize import Tokenized, tokenize_pairs
from rpo_bench.train.unpaired import file_kind, mismatched, read_single, tokenize_single

# Settings that may change between a run and its resumption.
# (`reference_cache` only says where the same numbers are kept)
RESUMABLE_CHANGES = {"out", "max_steps", "save_every", "log_every", "gold", "reference_cache"}


@dataclass
class TrainResult:
    out: Path
    final: Path | None
    steps: int
    pairs: int
    truncated: int  # prompts that lost earlier turns to fit max_length
    dropped: int  # pairs that do not fit max_length even without earlier turns
    seconds: dict[str, float] = field(default_factory=dict)  # tokenize, reference, train
    tokens: int = 0  # non-pad tokens of one epoch (chosen + rejected sequences)
    log: list[dict[str, Any]] = field(default_factory=list)


def _bf16(cfg: TrainConfig) -> bool:
    if cfg.bf16 is not None:
        return cfg.bf16
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    from rpo_bench.cpu import native_bf16

    return native_bf16()


def _sharded(acc: Any) -> bool:
    from accelerate.utils import DistributedType

    return acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def _wrap_lora(model: Any, cfg: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = cfg.lora
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _save_final(acc: Any, scorer: Any, tokenizer: Any, out: Path) -> Path | None:
    """`<out>/final`: full safetensors + tokenizer (LoRA merged), loadable by models.load."""
    acc.wait_for_everyone()
    model = acc.unwrap_model(scorer).model
    state = acc.get_state_dict(scorer) if _sharded(acc) else None  # every rank must call it
    if not acc.is_main_process:
        return None
    target = out / TRAIN_FINAL
    with atomic_folder(target) as tmp:
        if state is not None:  # sharded: the gathered weights (a LoRA run saves its adapter)
            state = {k.removeprefix("model."): v for k, v in state.items()}
            model.save_pretrained(tmp, state_dict=state, safe_serialization=True)
        else:
            if hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
            model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return target


def _read_examples(path: str | Path, cfg: TrainConfig) -> list:
    """The file's examples, of the kind the loss trains on, validated (errors name
    file:line and field): read before any model is loaded or folder made."""
    kind, found = example_kind(cfg.loss), file_kind(path)
    if kind != found:
        raise ValueError(
            f"{path}: holds {found} examples, but loss {cfg.loss!r} trains on {kind} examples"
        )
    return read_pairs(path) if kind == "preference" else read_single(path, kind)


def _tokenized(rows: list, cfg: TrainConfig, tokenizer: Any):
    """(tokenized, fill): the examples tokenized, and what completes a batch's examples
    (KTO: their mismatched replies)."""
    kind = example_kind(cfg.loss)
    if kind == "preference":
        return tokenize_pairs(rows, tokenizer, cfg.max_length), None
    fill = functools.partial(mismatched, max_length=cfg.max_length) if kind == "kto" else None
    return tokenize_single(rows, tokenizer, cfg.max_length), fill


def _validation_split(
    examples: list, turns: list[str], cfg: TrainConfig, path: str | Path
) -> tuple[list, list]:
    """(training, validation) examples: a seeded `val_fraction` of them held out, whole turns
    at a time (`turns[k]` is example k's), so both directions of a mirrored pair, which share
    their two replies, never fall on opposite sides."""
    if not cfg.val_fraction:
        return examples, []
    n = round(len(examples) * cfg.val_fraction)
    by_turn: dict[str, list[int]] = {}
    for k, turn in enumerate(turns):
        by_turn.setdefault(turn, []).append(k)
    order = sorted(by_turn)
    random.Random(f"val:{cfg.seed}").shuffle(order)
    chosen: set[int] = set()
    for turn in order:
        if len(chosen) >= n:
            break
        chosen.update(by_turn[turn])
    if n < 1 or len(chosen) >= len(examples):
        raise ValueError(
            f"{path}: val_fraction={cfg.val_fraction} of {len(examples)} examples from "
            f"{len(by_turn)} turns leaves {len(chosen)} for validation and "
            f"{len(examples) - len(chosen)} for training; need at least 1 each"
        )
    return (
        [e for k, e in enumerate(examples) if k not in chosen],
        [e for k, e in enumerate(examples) if k in chosen],
    )


def _check_resumable(state: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    # a key the checkpoint lacks is newer than it, and had its default then
    before = TrainConfig().to_dict() | state.get("config", {})
    now = cfg.to_dict()
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and before.get(k) != now[k])
    if changed:
        raise ValueError(
            f"cannot resume from {path}: config changed since the checkpoint ({', '.join(changed)})"
        )


@dataclass
class _Data:
    """The run's examples, tokenized and batched: this process's share of every step."""

    rows: int  # examples in the file
    tokenized: Tokenized
    steps: list[Step]  # one epoch's steps, fixed for the run
    left_out: int  # examples of a last global batch too small to share
    held_out: int  # examples held out for validation
    validation: list[Batch]

    @property
    def batches(self) -> list[Batch]:
        """This process's training micro-batches of one epoch."""
        return [b for step in self.steps for b in step.micro]


def _setup_accelerator(cfg: TrainConfig) -> Any:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed

    # accelerate keeps one process-wide state and refuses a second precision; an earlier
    # Accelerator in this process (lm-eval's HFLM, a previous train()) may have set another.
    # The partial state (the process group) is kept.
    AcceleratorState._reset_state()
    acc = Accelerator(mixed_precision="bf16" if _bf16(cfg) else "no")
    set_seed(cfg.seed)
    return acc


def _setup_data(rows: list, path: str | Path, cfg: TrainConfig, tokenizer: Any, acc: Any) -> _Data:
    tokenized, fill = _tokenized(rows, cfg, tokenizer)
    # the same global batches for any number of processes; each takes its share of every one
    # (equal step counts keep DDP/ZeRO-3 in lockstep)
    world = acc.num_processes
    turns = [turn_of(rows[e.index].id) for e in tokenized.pairs]
    trained, held_out = _validation_split(tokenized.pairs, turns, cfg, path)
    steps, left_out = schedule(
        trained, cfg.batch_size, cfg.grad_accum, world, acc.process_index,
        tokenizer.pad_token_id, cfg.seed, cfg.share_prompt, fill, cfg.batch_order, cfg.pack,
    )  # fmt: skip
    if not steps:
        raise ValueError(f"{path}: {len(rows)} pairs are too few for {world} processes")
    # every process scores the whole (small) validation set: no reduction needed
    validation = make_batches(held_out, cfg.batch_size, tokenizer.pad_token_id, cfg.seed,
                              cfg.share_prompt, fill, cfg.pack)  # fmt: skip
    return _Data(len(rows), tokenized, steps, left_out, len(held_out), validation)


def _setup_model(model: Any, cfg: TrainConfig) -> SequenceScorer:
    if cfg.lora is not None:
        model = _wrap_lora(model, cfg)
    if cfg.grad_checkpointing:
        causal_lm(model).gradient_checkpointing_enable({"use_reentrant": False})
    return SequenceScorer(model)


def _setup_gold(cfg: TrainConfig, loaded: Any, scorer: Any, acc: Any) -> MeasuredSet | None:
    """The gold pairs (`cfg.gold`), tokenized and batched like the training pairs, with
    their reference log-probs (through `reference_cache` where set: every cell of a grid
    measures the same gold set); never trained on."""
    if cfg.gold is None or not Path(cfg.gold).read_text().strip():  # no gold pairs: unmeasured
        return None
    rows, pad = read_pairs(cfg.gold), loaded.tokenizer.pad_token_id
    pairs = tokenize_pairs(rows, loaded.tokenizer, cfg.max_length).pairs
    batches = make_batches(pairs, cfg.batch_size, pad, cfg.seed, cfg.share_prompt, None, cfg.pack)
    if cfg.reference_cache is None:
        return MeasuredSet(batches, reference_logps(scorer, batches, len(rows), acc))
    computation = _computation(cfg, acc, loaded, cfg.gold, "preference")
    ref, _ = shared_reference(scorer, pairs, len(rows), computation, pad, cfg.reference_cache,
                              acc)  # fmt: skip
    return MeasuredSet(batches, ref)


def _setup_learning(
    out: Path, cfg: TrainConfig, data: _Data, acc: Any, start: int, ref: torch.Tensor,
    gold: MeasuredSet | None,
) -> LearningLog | None:  # fmt: skip
    """Learning measured on whole sets: the training pairs (in one process, which holds them
    all), the validation pairs and the gold set. SFT has no reference to measure its own
    examples against; the gold set is measured for every loss. It costs one forward pass
    over the sets at step 0 and after every epoch."""
    sets = {"gold": gold} if gold else {}
    kind = example_kind(cfg.loss)
    if kind != "sft":
        sets = {"train": MeasuredSet(data.batches if acc.num_processes == 1 else [], ref, kind),
                "validation": MeasuredSet(data.validation, ref, kind), **sets}  # fmt: skip
    return LearningLog(out / TRAIN_LEARNING, sets, acc.is_main_process, start) if sets else None


def _setup_optimizer(
    scorer: SequenceScorer, cfg: TrainConfig, steps: int
) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW on the trainable parameters and its cosine schedule with warmup."""
    from transformers import get_cosine_schedule_with_warmup

    optimizer = torch.optim.AdamW(
        [p for p in scorer.parameters() if p.requires_grad],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(steps * cfg.warmup_ratio), steps
    )
    return optimizer, scheduler


def _reference(
    scorer: Any, data: _Data, cfg: TrainConfig, acc: Any, pairs: str | Path, loaded: Any
) -> tuple[torch.Tensor, str | None]:
    """(every example's reference log-probs, a line saying where they came from): in the
    training batches, or with `reference_cache` in canonical ones, shared by runs with the
    same key (`reference.shared_reference`)."""
    if cfg.loss == "sft":  # the SFT loss has no reference model
        return torch.zeros(data.rows, 2), None
    kind = example_kind(cfg.loss)
    if cfg.reference_cache is None or kind == "kto":
        ref = reference_logps(scorer, data.batches + data.validation, data.rows, acc)
        if cfg.reference_cache is None:
            return ref, None
        # KTO's second reply is another example's, paired within the seed's batches
        return ref, "reference cache: not used by kto (its mismatched replies depend on the seed)"
    computation = _computation(cfg, acc, loaded, pairs, kind)
    return shared_reference(scorer, data.tokenized.pairs, data.rows, computation,
                            loaded.tokenizer.pad_token_id, cfg.reference_cache, acc)  # fmt: skip


def _computation(
    cfg: TrainConfig, acc: Any, loaded: Any, pairs: str | Path, kind: str
) -> Computation:
    """What a cached reference of this run's examples in `pairs` depends on besides them."""
    distributed = str(acc.distributed_type) if _sharded(acc) else None
    return Computation(loaded.path, str(pairs), kind, cfg.max_length, cfg.share_prompt,
                       cfg.batch_size, _bf16(cfg), acc.device.type, distributed)  # fmt: skip


def _resume(
    out: Path, cfg: TrainConfig, acc: Any, scorer: Any, optimizer: Any, scheduler: Any
) -> tuple[int, Path | None]:
    """(step to start from, the checkpoint it comes from): (0, None) without a checkpoint.
    `optimizer` is the unprepared one, whose state the checkpoint holds."""
    last = checkpoint.latest(out)
    if last is None:
        return 0, None
    if _sharded(acc):
        raise ValueError("resume is not supported under FSDP/DeepSpeed (checkpoints are not saved)")
    state = json.loads((last / "state.json").read_text())
    _check_resumable(state, cfg, last)
    return checkpoint.load(last, acc.unwrap_model(scorer).model, optimizer, scheduler)["step"], last


def _save_checkpoint(
    acc: Any, scorer: Any, optimizer: Any, scheduler: Any, cfg: TrainConfig, rows: int, step: int
) -> Path | None:
    """The checkpoint after `step` (`Run.save`); None on processes other than the main one,
    and under FSDP/DeepSpeed, whose sharded weights only the final save gathers."""
    if _sharded(acc):
        return None
    path = None
    if acc.is_main_process:
        extra = {"config": cfg.to_dict(), "pairs": rows}
        model = acc.unwrap_model(scorer).model
        path = checkpoint.save(Path(cfg.out), step, model, optimizer, scheduler, extra)
    acc.wait_for_everyone()
    return path


def _describe(cfg: TrainConfig, data: _Data, world: int, steps: int) -> str:
    """The run's first log line: examples, batch shape, steps and what was cut or set aside."""
    glob = cfg.batch_size * cfg.grad_accum * world
    tokenized = data.tokenized
    return (
        f"{data.rows} examples ({example_kind(cfg.loss)}), global batch {glob} = "
        f"{cfg.batch_size} per process x {cfg.grad_accum} accumulation x {world} processes "
        f"({cfg.batch_order} order), {steps} steps, {tokenized.truncated} prompts truncated, "
        f"{tokenized.dropped} dropped (longer than max_length={cfg.max_length} without "
        "their earlier turns)"
        + (f", {data.left_out} left out (a last batch smaller than {world * cfg.grad_accum})"
           if data.left_out else "")
        + (f", {data.held_out} held out for validation" if data.held_out else "")
    )  # fmt: skip


def _write_summary(result: TrainResult, cfg: TrainConfig) -> None:
    summary = {k: v for k, v in result.__dict__.items() if k != "log"}
    summary.update(out=str(result.out), final=str(result.final), config=cfg.to_dict())
    write_atomic(result.out / TRAIN_SUMMARY, json.dumps(summary, indent=1) + "\n")


def train(
    pairs: str | Path, cfg: TrainConfig, resume: bool = False, quiet: bool = False
) -> TrainResult:
    """Train on a pairs file (preference pairs, or SFT/KTO examples for those losses); returns
    a TrainResult. Writes checkpoints, log.jsonl and final/."""
    rows = _read_examples(pairs, cfg)  # a bad file fails here, before anything is loaded
    acc = _setup_accelerator(cfg)
    out = Path(cfg.out)
    clock = {"start": time.perf_counter()}
    loaded = models.load(cfg.model)
    out.mkdir(parents=True, exist_ok=True)
    data = _setup_data(rows, pairs, cfg, loaded.tokenizer, acc)
    clock["tokenize"] = time.perf_counter()

    scorer = _setup_model(loaded.model, cfg)
    steps = len(data.steps) * cfg.epochs
    raw_optimizer, scheduler = _setup_optimizer(scorer, cfg, steps)
    scorer, optimizer = acc.prepare(scorer, raw_optimizer)
    ref, reference_note = _reference(scorer, data, cfg, acc, pairs, loaded)
    gold = _setup_gold(cfg, loaded, scorer, acc)
    clock["reference"] = time.perf_counter()
    start, last = _resume(out, cfg, acc, scorer, raw_optimizer, scheduler) if resume else (0, None)

    save = functools.partial(_save_checkpoint, acc, scorer, raw_optimizer, scheduler, cfg,
                             data.rows)  # fmt: skip
    log = RunLog(out, steps, start, enabled=acc.is_main_process, quiet=quiet)
    log.message(_describe(cfg, data, acc.num_processes, steps))
    if reference_note:
        log.message(reference_note)
    try:
        learn = _setup_learning(out, cfg, data, acc, start, ref, gold)
        run = Run(cfg, acc, scorer, optimizer, scheduler, data.steps, ref, log, save,
                  data.validation, learn)  # fmt: skip
        reached = train_loop(run, start, last)
        clock["train"] = time.perf_counter()
        if reached > start:
            save(reached)
        final = _save_final(acc, scorer, loaded.tokenizer, out)
    finally:
        log.close()
    seconds = {
        "tokenize": clock["tokenize"] - clock["start"],
        "reference": clock["reference"] - clock["tokenize"],
        "train": clock["train"] - clock["reference"],
    }
    result = TrainResult(
        out, final, reached, data.rows, data.tokenized.truncated, data.tokenized.dropped,
        seconds, sum(b.tokens for b in data.batches), log.rows,
    )  # fmt: skip
    if acc.is_main_process:
        _write_summary(result, cfg)
    return result
