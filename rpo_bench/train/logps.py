"""Sequence log-probabilities of the reply tokens, without materializing full logits.

The backbone runs on every token, but only reply positions go through the output
head, in row chunks whose logits are recomputed in backward (activation
checkpointing), so memory holds one chunk of vocabulary-wide logits at a time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

LOGIT_ELEMENTS_PER_CHUNK = 1 << 23  # 32 MiB of float32 logits per chunk


def causal_lm(model: nn.Module) -> Any:
    """The transformers causal LM inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _token_logps(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    return logits.gather(-1, targets[:, None]).squeeze(-1) - logits.logsumexp(-1)


class SequenceScorer(nn.Module):
    """Wraps a causal LM (or a PeftModel); forward returns each row's summed reply log-prob.

    A module of its own so that `accelerator.prepare` (DDP, FSDP, DeepSpeed) wraps the
    call the loop makes.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        reply_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        scored: torch.Tensor | None = None,
        reply_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Summed reply log-probs per sequence: plain rows, or (with `scored`) the chosen
        then rejected replies of shared-prompt rows, one pair or several packed to a row
        (`batches.collate_shared`; `reply_tokens`, one entry per reply, says how many)."""
        lm = causal_lm(self.model)
        backbone = getattr(lm, lm.base_model_prefix)
        head = lm.get_output_embeddings()
        hidden = backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).last_hidden_state
        if scored is None:
            # position t predicts token t+1: score hidden[t] against input_ids[t+1] on replies
            where = reply_mask[:, 1:].bool()
            rows, n_out = where.nonzero()[:, 0], len(input_ids)
            h, targets = hidden[:, :-1][where], input_ids[:, 1:][where]
        else:
            row, source, target, rows = scored.unbind(1)
            h, targets = hidden[row, source], input_ids[row, target]
            n_out = len(reply_tokens) if reply_tokens is not None else 2 * len(input_ids)
        chunk = max(1, LOGIT_ELEMENTS_PER_CHUNK // head.out_features)
        parts = []
        for start in range(0, len(h), chunk):
            args = (head, h[start : start + chunk], targets[start : start + chunk])
            if torch.is_grad_enabled():
                parts.append(checkpoint(_token_logps, *args, use_reentrant=False))
            else:
                parts.append(_token_logps(*args))
        token_logps = torch.cat(parts) if parts else h.new_zeros(0, dtype=torch.float32)
        return token_logps.new_zeros(n_out).index_add(0, rows, token_logps)
