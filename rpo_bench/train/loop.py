"""The training loop: micro-batches -> loss (preference, SFT or KTO) -> accumulated AdamW steps."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from rpo_bench import faults
from rpo_bench.train.batches import Batch, Step, epoch_order
from rpo_bench.train.config import TrainConfig
from rpo_bench.train.loss import KtoLogps, PairLogps, kto_loss, preference_loss, sft_loss
from rpo_bench.train.progress import RunLog


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the run stops before applying that step."""


@dataclass
class Run:
    cfg: TrainConfig
    accelerator: Any  # accelerate.Accelerator
    scorer: torch.nn.Module  # SequenceScorer, prepared
    optimizer: torch.optim.Optimizer
    scheduler: Any
    steps: list[Step]  # one epoch's steps, this process's share, fixed for the run
    ref: torch.Tensor  # [n_examples, 2] reference log-probs of both replies (zeros for SFT)
    log: RunLog
    save: Callable[[int], Any]  # writes a checkpoint after step N, returns its path
    validation: list[Batch] = field(default_factory=list)  # held-out examples (val_fraction)
    # measures learning on whole sets after a step: 0, every epoch's last, the run's last
    learn: Callable[[Run, int], Any] | None = None

    @property
    def steps_per_epoch(self) -> int:
        return len(self.steps)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg.epochs


def plan(run: Run, start: int, stop: int) -> Iterator[tuple[int, int, Step]]:
    """(step, epoch, this process's share of the step) from `start`; a pure function of the
    seed and the global batch size, so resumable, and the same global batches for any
    number of processes."""
    for step in range(start, stop):
        epoch, k = divmod(step, run.steps_per_epoch)
        yield step, epoch, run.steps[epoch_order(run.steps_per_epoch, run.cfg.seed, epoch)[k]]


def policy_logps(run: Run, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The policy's summed log-probs of each example's first and second reply: (chosen,
    rejected), (response, mismatched response) for KTO, (response, nothing) for SFT."""
    with run.accelerator.autocast():
        logps = run.scorer(**batch.inputs(run.accelerator.device))
    chosen, rejected = logps.float().chunk(2)
    return chosen, rejected


def batch_loss(run: Run, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    device = run.accelerator.device
    chosen, rejected = policy_logps(run, batch)
    tokens_c, tokens_r = batch.reply_tokens.to(device).chunk(2)
    ref = run.ref[batch.index].to(device)
    cfg = run.cfg
    if cfg.loss == "sft":
        return sft_loss(chosen, tokens_c)
    if cfg.loss == "kto":
        kto = KtoLogps(chosen, rejected, ref[:, 0], ref[:, 1])
        return kto_loss(kto, batch.desirable, cfg.beta, cfg.desirable_weight,
                        cfg.undesirable_weight)  # fmt: skip
    pair = PairLogps(chosen, rejected, ref[:, 0], ref[:, 1], tokens_c, tokens_r)
    margin = batch.margin.to(device)
    return preference_loss(
        pair, margin, cfg.loss, cfg.margin_mode, cfg.beta, cfg.gamma, cfg.sft_weight,
        cfg.label_smoothing,
    )  # fmt: skip


@torch.no_grad()
def validate(run: Run) -> dict[str, float]:
    """The loss and metrics on the held-out examples, each example weighing the same."""
    run.scorer.eval()
    total = sum(b.size for b in run.validation)
    sums: dict[str, float] = defaultdict(float)
    for batch in run.validation:
        _, metrics = batch_loss(run, batch)
        for key, value in metrics.items():
            sums[f"val_{key}"] += value * batch.size / total
    run.scorer.train()
    return dict(sums)


def _global(acc: Any, sums: dict[str, float], tokens: int) -> tuple[dict[str, float], int]:
    """The step's metrics over the whole global batch: every process's weighted share summed."""
    if acc.num_processes == 1:
        return dict(sums), tokens
    keys = sorted(sums)
    values = torch.tensor([sums[k] for k in keys] + [float(tokens)], device=acc.device)
    values = acc.reduce(values, reduction="sum").tolist()
    return dict(zip(keys, values[:-1], strict=True)), int(values[-1])


def train_loop(run: Run, start: int, last_checkpoint: Any = None) -> int:
    """Run optimizer steps from `start`; return the step reached."""
    cfg, acc = run.cfg, run.accelerator
    stop = min(run.total_steps, cfg.max_steps or run.total_steps)
    params = [p for p in run.scorer.parameters() if p.requires_grad]
    run.scorer.train()
    step = start
    world = acc.num_processes
    if run.learn and start == 0:
        run.learn(run, 0)  # the model before any step: the reference
    for step, epoch, share in plan(run, start, stop):
        began, tokens, sums = time.perf_counter(), 0, defaultdict(float)
        for i, batch in enumerate(share.micro):
            last = i == len(share.micro) - 1  # sync gradients across processes once per step
            # weights make the step's gradient the mean over the whole global batch (DDP
            # averages over processes), whatever the micro-batch sizes
            weight = batch.size / share.global_size
            with nullcontext() if last else acc.no_sync(run.scorer):
                loss, metrics = batch_loss(run, batch)
                if not math.isfinite(metrics["loss"]):
                    raise NonFiniteLossError(
                        f"loss is {metrics['loss']} at step {step + 1} (epoch {epoch}); "
                        f"training stopped, last checkpoint kept: {last_checkpoint or 'none yet'}"
                    )
                acc.backward(loss * (weight * world))
            tokens += batch.tokens
            for key, value in metrics.items():
                sums[key] += value * weight
        sums, tokens = _global(acc, sums, tokens)
        if cfg.max_grad_norm:
            acc.clip_grad_norm_(params, cfg.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        done = step + 1
        if done % cfg.log_every == 0 or done == stop:
            run.log.log(
                {"step": done, "epoch": epoch, **sums, "lr": run.scheduler.get_last_lr()[0],
                 "pairs_per_s": share.global_size / seconds, "tokens_per_s": tokens / seconds}
            )  # fmt: skip
        if done % run.steps_per_epoch == 0 or done == stop:
            if run.validation:
                run.log.log({"step": done, "epoch": epoch, **validate(run)})
            if run.learn:
                run.learn(run, done)
        if cfg.save_every and done % cfg.save_every == 0 and done != stop:
            last_checkpoint = run.save(done)
            faults.reach(f"train-step-{done}")
    return stop if stop > start else start
