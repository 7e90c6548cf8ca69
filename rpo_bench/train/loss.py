"""Preference losses: DPO (sigmoid), RPO (DPO with the per-pair margin g), IPO, the
noise-aware cDPO and robust DPO, optional SFT.

delta = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l)), summed over reply tokens;
eps = label_smoothing, the assumed rate of flipped preference labels.
  dpo:                 -logsigmoid(beta * delta)
  rpo, outside_beta:   -logsigmoid(beta * delta - gamma * g)      (the paper's formula)
  rpo, inside_beta:    -logsigmoid(beta * (delta - gamma * g))    (the authors' code)
  ipo:                 (delta_per_token - 1 / (2 * beta))**2      (TRL's length-normalized IPO)
  cdpo:                -(1 - eps) logsigmoid(beta delta) - eps logsigmoid(-beta delta)
                       (conservative DPO: the label is right with probability 1 - eps)
  robust_dpo:          [-(1 - eps) logsigmoid(beta delta) + eps logsigmoid(-beta delta)]
                       / (1 - 2 eps)   (Chowdhury et al. 2024: unbiased under flip rate eps)
  sft term:            sft_weight * mean NLL of the chosen reply tokens

Single responses (pairs-file rows of kind sft / kto):
  sft:                 mean NLL of the response tokens of the batch (prompt masked)
  kto:                 desirable:   w_d * (1 - sigmoid(beta * (r - z0)))
                       undesirable: w_u * (1 - sigmoid(beta * (z0 - r)))
                       r = log pi(y|x) - log ref(y|x); z0 = max(0, mean over the batch of
                       log pi(y'|x) - log ref(y'|x)), y' another example's response,
                       detached (TRL's KTO loss and KL estimate, Ethayarajh et al. 2024)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class PairLogps:
    """Summed reply log-probs per pair, policy and reference, and the reply lengths."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    ref_chosen: torch.Tensor
    ref_rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor


def preference_loss(
    logps: PairLogps,
    margin: torch.Tensor,
    loss: str = "rpo",
    margin_mode: str = "outside_beta",
    beta: float = 0.1,
    gamma: float = 0.05,
    sft_weight: float = 0.0,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean loss over the pairs of a batch, and its metrics (rewards are beta * log-ratios)."""
    chosen_ratio = logps.chosen - logps.ref_chosen
    rejected_ratio = logps.rejected - logps.ref_rejected
    delta = chosen_ratio - rejected_ratio
    margin = margin.to(delta)
    if loss == "dpo":
        per_pair = -F.logsigmoid(beta * delta)
    elif loss == "rpo" and margin_mode == "outside_beta":
        per_pair = -F.logsigmoid(beta * delta - gamma * margin)
    elif loss == "rpo" and margin_mode == "inside_beta":
        per_pair = -F.logsigmoid(beta * (delta - gamma * margin))
    elif loss == "ipo":
        per_token = chosen_ratio / logps.chosen_tokens.clamp(min=1) - rejected_ratio / (
            logps.rejected_tokens.clamp(min=1)
        )
        per_pair = (per_token - 1 / (2 * beta)) ** 2
    elif loss in ("cdpo", "robust_dpo"):
        eps = label_smoothing
        right, flipped = -F.logsigmoid(beta * delta), -F.logsigmoid(-beta * delta)
        if loss == "cdpo":
            per_pair = (1 - eps) * right + eps * flipped
        else:
            per_pair = ((1 - eps) * right - eps * flipped) / (1 - 2 * eps)
    else:
        raise ValueError(f"unknown loss {loss!r} / margin_mode {margin_mode!r}")
    total = per_pair.mean()
    if sft_weight:
        total = total + sft_weight * mean_token_nll(logps.chosen, logps.chosen_tokens)
    with torch.no_grad():
        rc, rr = beta * chosen_ratio, beta * rejected_ratio
        metrics = {
            "loss": float(total),
            "rewards/chosen": float(rc.mean()),
            "rewards/rejected": float(rr.mean()),
            "rewards/margins": float((rc - rr).mean()),
            "rewards/accuracies": float((rc > rr).float().mean()),
        }
    return total, metrics


def mean_token_nll(logps: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per reply token, from summed reply log-probs."""
    return -logps.sum() / tokens.sum().clamp(min=1)


def sft_loss(logps: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Supervised fine-tuning: the mean NLL of the batch's response tokens (prompt masked);
    `logps` are summed per response, `tokens` count its scored tokens."""
    total = mean_token_nll(logps, tokens)
    return total, {"loss": total.item()}


@dataclass
class KtoLogps:
    """Summed reply log-probs per example: its response and the mismatched one (KL)."""

    response: torch.Tensor
    kl: torch.Tensor
    ref_response: torch.Tensor
    ref_kl: torch.Tensor


def kto_loss(
    logps: KtoLogps,
    desirable: torch.Tensor,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """KTO (Ethayarajh et al. 2024) as TRL computes it: mean over the batch's examples.

    The reference point z0 is the batch's mean log-ratio on mismatched (prompt, response)
    pairs, clamped at 0 and detached, so it only shifts the sigmoid.
    """
    kl = (logps.kl - logps.ref_kl).mean().detach().clamp(min=0)
    ratio = logps.response - logps.ref_response
    desirable = desirable.to(ratio.device).bool()
    per_example = torch.where(
        desirable,
        desirable_weight * (1 - torch.sigmoid(beta * (ratio - kl))),
        undesirable_weight * (1 - torch.sigmoid(beta * (kl - ratio))),
    )
    total = per_example.mean()
    with torch.no_grad():
        rewards = beta * ratio
        good, bad = rewards[desirable], rewards[~desirable]
        metrics = {"loss": total.item(), "kl": kl.item()}
        if len(good):
            metrics["rewards/chosen"] = float(good.mean())
        if len(bad):
            metrics["rewards/rejected"] = float(bad.mean())
        if len(good) and len(bad):
            metrics["rewards/margins"] = float(good.mean() - bad.mean())
    return total, metrics
