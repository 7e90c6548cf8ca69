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
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch

from rpo_bench.files import write_atomic
from rpo_bench.train.batches import Batch
from rpo_bench.train.loop import policy_logps
from rpo_bench.train.loss import PairLogps, preference_loss

Z95 = 1.959963984540054
TIE = 1e-6  # |margin| below this is a tie: policy and reference give the same log-probs


def wilson(k: float, n: int) -> list[float]:
    """The 95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return [math.nan, math.nan]
    p, z2 = k / n, Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [centre - half, centre + half]


def mean_interval(x: torch.Tensor) -> list[float]:
    """The 95% normal interval of a mean."""
    n = len(x)
    if n < 2:
        return [math.nan, math.nan]
    half = Z95 * x.std().item() / math.sqrt(n)
    return [x.mean().item() - half, x.mean().item() + half]


@torch.no_grad()
def set_logps(run: Any, batches: list[Batch]) -> tuple[PairLogps, torch.Tensor]:
    """Every pair's policy and reference log-probs and reply lengths, and its margin g."""
    parts: list[tuple[torch.Tensor, ...]] = []
    for batch in batches:
        chosen, rejected = policy_logps(run, batch)
        ref = run.ref[batch.index]
        tokens_c, tokens_r = batch.reply_tokens.chunk(2)
        parts.append((chosen.cpu(), rejected.cpu(), ref[:, 0], ref[:, 1], tokens_c, tokens_r,
                      batch.margin))  # fmt: skip
    cat = [torch.cat(column) for column in zip(*parts, strict=True)]
    return PairLogps(*cat[:6]), cat[6]


def preference_learning(logps: PairLogps, margin: torch.Tensor, cfg: Any) -> dict[str, Any]:
    """The learning metrics of one set (see the module docstring), `cfg` a TrainConfig."""
    settings = dict(loss=cfg.loss, margin_mode=cfg.margin_mode, beta=cfg.beta,
                    gamma=cfg.gamma, label_smoothing=cfg.label_smoothing)  # fmt: skip
    loss, _ = preference_loss(logps, margin, **settings)
    # the policy set to the reference: what a model that learned nothing scores
    unlearned = dataclasses.replace(logps, chosen=logps.ref_chosen, rejected=logps.ref_rejected)
    null, _ = preference_loss(unlearned, margin, **settings)
    drift_c = logps.chosen - logps.ref_chosen
    drift_r = logps.rejected - logps.ref_rejected
    rewards = cfg.beta * (drift_c - drift_r)
    right = (rewards > TIE).sum().item() + 0.5 * (rewards.abs() <= TIE).sum().item()
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


def measure(run: Any, sets: dict[str, list[Batch]]) -> dict[str, dict[str, Any]]:
    """The learning metrics of each named set of batches (empty sets left out)."""
    was_training = run.scorer.training
    run.scorer.eval()
    try:
        return {
            name: preference_learning(*set_logps(run, batches), run.cfg)
            for name, batches in sets.items()
            if batches
        }
    finally:
        run.scorer.train(was_training)


class LearningLog:
    """`<out>/learning.json`: the metrics of each set at step 0, after every epoch and at the
    end, rewritten atomically after each; a resumed run keeps the points it had reached.
    Only preference losses have them; only the main process writes."""

    def __init__(self, path: Path, sets: dict[str, list[Batch]], write: bool, start: int):
        self.path, self.sets, self.write = path, sets, write
        old = json.loads(path.read_text())["points"] if start and path.exists() else []
        self.points = [p for p in old if p["step"] <= start]

    def __call__(self, run: Any, step: int) -> None:
        point = {"step": step, "epochs": step / run.steps_per_epoch, **measure(run, self.sets)}
        self.points.append(point)
        if self.write:
            text = json.dumps({"loss": run.cfg.loss, "points": self.points}, indent=1)
            write_atomic(self.path, text + "\n")
