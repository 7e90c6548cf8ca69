"""Did training learn? Preference accuracy, implicit-reward margin and log-prob drift over
whole sets of pairs (not per-step batches of 4), with 95% intervals, and the loss against
its null: what the same loss scores for a model that learned nothing.

On a preference set, per pair: reward r = beta * (log pi(y) - log ref(y)) for each reply;
margin = r_chosen - r_rejected; the pair counts as right when the margin is > 0, half when
it is 0 (a tie: at step 0 every margin is 0, so a model that learned nothing scores 0.5);
drift = log pi(y) - log ref(y) per reply, so both falling (squeezing) shows. The null is
the configured loss with the policy's log-probs set to the reference's: ln 2 for the
sigmoid DPO loss, mean -log sigmoid(-gamma g) for `rpo` outside beta, mean
-log sigmoid(-beta gamma g) inside beta, 1 / (4 beta^2) for IPO, and so on, each exactly.
KTO's own (unpaired) examples: an example is right when its implicit reward has the sign
of its label (desirable > 0, undesirable < 0), half on a tie; the margin is the mean reward
signed by the label; the loss is KTO's over the whole set (its KL point from the whole
set's mismatched replies), the null KTO's with the policy set to the reference. Every model
is measured on the gold set (pairs), its loss read as DPO's where it trained on single
responses; SFT's own examples have no reference to measure against.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rpo_bench.files import write_atomic
from rpo_bench.train.batches import Batch
from rpo_bench.train.config import example_kind
from rpo_bench.train.loop import policy_logps
from rpo_bench.train.loss import KtoLogps, PairLogps, kto_loss, preference_loss

Z95 = 1.959963984540054
TIE = 1e-6  # |margin| below this is a tie: policy and reference give the same log-probs


def wilson(k: float, n: int) -> list[float]:
    """The 95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return [math.nan, math.nan]
    p, z2 = k / n, Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # it contains p exactly: at k = n the upper bound is 1 in exact arithmetic, not 1 - 1e-16
    return [min(p, centre - half), max(p, centre + half)]


def mean_interval(x: torch.Tensor) -> list[float]:
    """The 95% normal interval of a mean."""
    n = len(x)
    if n < 2:
        return [math.nan, math.nan]
    half = Z95 * x.std().item() / math.sqrt(n)
    return [x.mean().item() - half, x.mean().item() + half]


@dataclass
class MeasuredSet:
    """A set of pairs learning is measured on: its batches, and the reference log-probs of
    its pairs by index (`Batch.index`)."""

    batches: list[Batch]
    ref: torch.Tensor
    kind: str = "preference"  # or "kto": single responses with labels


@torch.no_grad()
def set_logps(
    run: Any, measured: MeasuredSet, start: bool = False
) -> tuple[PairLogps, torch.Tensor]:
    """Every pair's policy and reference log-probs and reply lengths, and its margin g (KTO:
    each example's response and mismatched reply, and its label).

    `start`: before the first step the policy is the reference (LoRA adds B A x with B = 0;
    full training has not moved), so the reference log-probs are its log-probs: the first
    batch is scored to check that, and only a mismatch scores the rest (a pass as long as
    the reference's, saved). The reference's numbers are taken then, so every margin at
    step 0 is an exact tie, whichever batches the reference was computed in."""
    parts: list[tuple[torch.Tensor, ...]] = []
    for i, batch in enumerate(measured.batches):
        ref = measured.ref[batch.index]
        if not start or i == 0:
            chosen, rejected = policy_logps(run, batch)
        if start and i == 0:  # stays true only where the policy gives the reference's numbers
            scored = torch.stack([chosen.cpu(), rejected.cpu()], 1)
            start = torch.allclose(scored, ref, rtol=1e-3, atol=1e-3)
        if start:  # exactly the reference's: every margin is a tie
            chosen, rejected = ref[:, 0], ref[:, 1]
        tokens_c, tokens_r = batch.reply_tokens.chunk(2)
        last = batch.desirable if measured.kind == "kto" else batch.margin
        parts.append((chosen.cpu(), rejected.cpu(), ref[:, 0], ref[:, 1], tokens_c, tokens_r,
                      last))  # fmt: skip
    cat = [torch.cat(column) for column in zip(*parts, strict=True)]
    return PairLogps(*cat[:6]), cat[6]


def _right(rewards: torch.Tensor) -> float:
    """Pairs (or examples) whose reward is positive, ties counted half."""
    return (rewards > TIE).sum().item() + 0.5 * (rewards.abs() <= TIE).sum().item()


def kto_learning(logps: PairLogps, desirable: torch.Tensor, cfg: Any) -> dict[str, Any]:
    """KTO's learning metrics on its own examples (see the module docstring): `logps` holds
    each example's response (chosen) and mismatched reply (rejected)."""
    desirable = desirable.bool()
    weights = (cfg.beta, cfg.desirable_weight, cfg.undesirable_weight)
    kto = KtoLogps(logps.chosen, logps.rejected, logps.ref_chosen, logps.ref_rejected)
    loss, _ = kto_loss(kto, desirable, *weights)
    unlearned = KtoLogps(kto.ref_response, kto.ref_kl, kto.ref_response, kto.ref_kl)
    null, _ = kto_loss(unlearned, desirable, *weights)
    ratio = logps.chosen - logps.ref_chosen
    signed = cfg.beta * torch.where(desirable, ratio, -ratio)
    n = len(signed)
    return {
        "n": n,
        "accuracy": _right(signed) / n if n else math.nan,
        "accuracy_ci95": wilson(_right(signed), n),
        "margin": signed.mean().item() if n else math.nan,
        "margin_ci95": mean_interval(signed),
        "loss": loss.item(),
        "null_loss": null.item(),
        # the desirable and the undesirable responses' drift (as chosen / rejected)
        "drift_chosen": ratio[desirable].mean().item() if desirable.any() else math.nan,
        "drift_rejected": ratio[~desirable].mean().item() if (~desirable).any() else math.nan,
    }


def preference_learning(logps: PairLogps, margin: torch.Tensor, cfg: Any) -> dict[str, Any]:
    """The learning metrics of one set (see the module docstring), `cfg` a TrainConfig."""
    loss = cfg.loss if example_kind(cfg.loss) == "preference" else "dpo"
    settings = dict(loss=loss, margin_mode=cfg.margin_mode, beta=cfg.beta,
                    gamma=cfg.gamma, label_smoothing=cfg.label_smoothing)  # fmt: skip
    loss, _ = preference_loss(logps, margin, **settings)
    # the policy set to the reference: what a model that learned nothing scores
    unlearned = dataclasses.replace(logps, chosen=logps.ref_chosen, rejected=logps.ref_rejected)
    null, _ = preference_loss(unlearned, margin, **settings)
    drift_c = logps.chosen - logps.ref_chosen
    drift_r = logps.rejected - logps.ref_rejected
    rewards = cfg.beta * (drift_c - drift_r)
    right = _right(rewards)
    n = len(rewards)
    return {
        "n": n,
        "accuracy": right / n if n else math.nan,
        "accuracy_ci95": wilson(right, n),
        "margin": rewards.mean().item() if n else math.nan,
        "margin_ci95": mean_interval(rewards),
        "loss": loss.item(),
        "null_loss": null.item(),
        "drift_chosen": drift_c.mean().item() if n else math.nan,
        "drift_rejected": drift_r.mean().item() if n else math.nan,
    }


def measure(
    run: Any, sets: dict[str, MeasuredSet], start: bool = False
) -> dict[str, dict[str, Any]]:
    """The learning metrics of each named set (empty sets left out); `start`: before the
    first step (`set_logps`)."""
    was_training = run.scorer.training
    run.scorer.eval()
    try:
        return {
            name: (kto_learning if measured.kind == "kto" else preference_learning)(
                *set_logps(run, measured, start), run.cfg
            )
            for name, measured in sets.items()
            if measured.batches
        }
    finally:
        run.scorer.train(was_training)


class LearningLog:
    """`<out>/learning.json`: the metrics of each set at step 0, after every epoch and at the
    end, rewritten atomically after each; a resumed run keeps the points it had reached.
    Only the main process writes."""

    def __init__(self, path: Path, sets: dict[str, MeasuredSet], write: bool, start: int):
        self.path, self.sets, self.write = path, sets, write
        old = json.loads(path.read_text())["points"] if start and path.exists() else []
        self.points = [p for p in old if p["step"] <= start]

    def __call__(self, run: Any, step: int) -> None:
        point = {"step": step, "epochs": step / run.steps_per_epoch,
                 **measure(run, self.sets, start=step == 0)}  # fmt: skip
        self.points.append(point)
        if self.write:
            text = json.dumps({"loss": run.cfg.loss, "points": self.points}, indent=1)
            write_atomic(self.path, text + "\n")
