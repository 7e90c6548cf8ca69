"""The training loop: micro-batches -> loss (preference, SFT or KTO) -> accumulated AdamW steps."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from rpo_bench.train.config import TrainConfig
from rpo_bench.train.data import Batch, epoch_order
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
    batches: list[Batch]  # this process's share, fixed for the run
    ref: torch.Tensor  # [n_examples, 2] reference log-probs of both replies (zeros for SFT)
    log: RunLog
    save: Callable[[int], Any]  # writes a checkpoint after step N, returns its path

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.batches) / self.cfg.grad_accum)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg.epochs


def plan(run: Run, start: int, stop: int) -> Iterator[tuple[int, int, list[Batch]]]:
    """(step, epoch, micro-batches) from `start`; a pure function of the seed, so resumable."""
    ga = run.cfg.grad_accum
    for step in range(start, stop):
        epoch, k = divmod(step, run.steps_per_epoch)
        order = epoch_order(len(run.batches), run.cfg.seed, epoch)
        yield step, epoch, [run.batches[i] for i in order[k * ga : (k + 1) * ga]]


def batch_loss(run: Run, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    device = run.accelerator.device
    with run.accelerator.autocast():
        logps = run.scorer(**batch.inputs(device))
    # first and second reply of every example: (chosen, rejected), (response, mismatched
    # response) for KTO, (response, nothing) for SFT
    chosen, rejected = logps.float().chunk(2)
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


def train_loop(run: Run, start: int, last_checkpoint: Any = None) -> int:
    """Run optimizer steps from `start`; return the step reached."""
    cfg, acc = run.cfg, run.accelerator
    stop = min(run.total_steps, cfg.max_steps or run.total_steps)
    params = [p for p in run.scorer.parameters() if p.requires_grad]
    run.scorer.train()
    step = start
    for step, epoch, micro in plan(run, start, stop):
        began, tokens, sums = time.perf_counter(), 0, defaultdict(float)
        for i, batch in enumerate(micro):
            last = i == len(micro) - 1  # sync gradients across processes only once per step
            with nullcontext() if last else acc.no_sync(run.scorer):
                loss, metrics = batch_loss(run, batch)
                if not math.isfinite(metrics["loss"]):
                    raise NonFiniteLossError(
                        f"loss is {metrics['loss']} at step {step + 1} (epoch {epoch}); "
                        f"training stopped, last checkpoint kept: {last_checkpoint or 'none yet'}"
                    )
                acc.backward(loss / len(micro))
            tokens += batch.tokens
            for key, value in metrics.items():
                sums[key] += value / len(micro)
        if cfg.max_grad_norm:
            acc.clip_grad_norm_(params, cfg.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        done = step + 1
        if done % cfg.log_every == 0 or done == stop:
            pairs = sum(b.size for b in micro) * acc.num_processes
            run.log.log(
                {"step": done, "epoch": epoch, **sums, "lr": run.scheduler.get_last_lr()[0],
                 "pairs_per_s": pairs / seconds,
                 "tokens_per_s": tokens * acc.num_processes / seconds}
            )  # fmt: skip
        if cfg.save_every and done % cfg.save_every == 0 and done != stop:
            last_checkpoint = run.save(done)
    return stop if stop > start else start
