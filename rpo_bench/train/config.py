"""Training configuration: one dataclass, loadable from YAML; unknown keys and bad values
are errors naming the key (and in a file, its line)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpo_bench.typedconfig import ConfigError, build, read_yaml

LOSSES = ("dpo", "rpo", "ipo", "cdpo", "robust_dpo", "sft", "kto")
MARGIN_MODES = ("outside_beta", "inside_beta")
# length: global batches of near-equal lengths (sorted, ties by the seed); bucketed: a seeded
# shuffle cut into buckets of 8 global batches, sorted within each (mixed data, low padding)
BATCH_ORDERS = ("length", "bucketed")
# the losses that train on single responses, by the example kind they read (`kind` of a
# pairs-file row); every other loss reads preference pairs
SINGLE_RESPONSE_LOSSES = {"sft": "sft", "kto": "kto"}


def example_kind(loss: str) -> str:
    """The kind of pairs-file example a loss trains on: preference, sft or kto."""
    return SINGLE_RESPONSE_LOSSES.get(loss, "preference")


@dataclass
class LoraSettings:
    """LoRA adapter; the paper used r=8, alpha=16 on all linear modules."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    # peft's "all-linear" targets every linear layer except the output head
    target_modules: str | list[str] = "all-linear"


@dataclass
class TrainConfig:
    """Everything a run depends on. Defaults are the paper's RPO settings."""

    model: str = "smollm2-135m"
    out: str = "runs/train"
    loss: str = "rpo"  # dpo | rpo | ipo | cdpo | robust_dpo | sft | kto
    # outside_beta: -logsigmoid(beta*delta - gamma*g) (the paper's formula);
    # inside_beta: -logsigmoid(beta*(delta - gamma*g)) (the authors' code)
    margin_mode: str = "outside_beta"
    beta: float = 0.1
    gamma: float = 0.05
    sft_weight: float = 0.0  # weight of the NLL of the chosen reply, added to the loss
    # cdpo / robust_dpo: the assumed share of flipped preference labels (epsilon)
    label_smoothing: float = 0.0
    # kto: weights of the desirable and undesirable examples' losses (TRL's defaults)
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    lora: LoraSettings | None = field(default_factory=LoraSettings)  # None: full fine-tuning
    lr: float = 5e-4
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    epochs: int = 1
    # pairs per micro-batch and process (2x sequences in the forward); a step's global batch
    # is batch_size x grad_accum x processes, and its pairs do not depend on the processes
    batch_size: int = 8
    grad_accum: int = 1
    batch_order: str = "length"  # length | bucketed (BATCH_ORDERS)
    # share of the examples held out (seeded) for validation loss and reward accuracy, logged
    # after every epoch; 0: none (the authors held out 0.1)
    val_fraction: float = 0.0
    # a pairs file never trained on, whose preference accuracy is measured with the other
    # sets (the ablation's gold set: one yardstick for every strategy); None: none
    gold: str | None = None
    # a folder of reference log-probs shared by runs on the same model and examples (other
    # seeds, epochs, losses): computed once per key in canonical, seed-independent batches
    # (train/reference.py); None: computed in the run's own training batches, every run
    reference_cache: str | None = None
    warmup_ratio: float = 0.1
    max_length: int = 1024
    grad_checkpointing: bool = True  # per layer; on CPU it cost ~4% and saved ~2/3 of RSS
    # None: bf16 autocast where CUDA supports it, or on a CPU with native bf16 matmuls
    bf16: bool | None = None
    # Chosen and rejected share one row `prompt|chosen|rejected`: the prompt runs once.
    share_prompt: bool = True
    # Shared-prompt rows packed several pairs to a row, as wide as the batch's longest pair
    # (no row grows, so attention costs no more): removes padding where a batch's lengths
    # differ; the log-probs are those of one pair per row (tests/test_train_parity.py).
    pack: bool = False
    seed: int = 0
    save_every: int = 0  # checkpoint every N optimizer steps; 0: only at the end
    max_steps: int | None = None  # stop after N steps; the schedule still spans all epochs
    log_every: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.lora, dict):
            self.lora = build(LoraSettings, self.lora, ("lora",))
        rules = {
            "loss": (self.loss in LOSSES, f"one of {', '.join(LOSSES)}"),
            "margin_mode": (self.margin_mode in MARGIN_MODES, f"one of {', '.join(MARGIN_MODES)}"),
            "beta": (self.beta > 0, "> 0"),
            "gamma": (self.gamma >= 0, ">= 0"),
            "label_smoothing": (0 <= self.label_smoothing < 0.5, "in [0, 0.5)"),
            "desirable_weight": (self.desirable_weight > 0, "> 0"),
            "undesirable_weight": (self.undesirable_weight > 0, "> 0"),
            "lr": (self.lr > 0, "> 0"),
            "epochs": (self.epochs >= 1, ">= 1"),
            # KTO's KL reference point comes from the other examples of a batch (as in TRL)
            "batch_size": (self.batch_size >= 2, ">= 2 for loss kto")
            if self.loss == "kto"
            else (self.batch_size >= 1, ">= 1"),
            "grad_accum": (self.grad_accum >= 1, ">= 1"),
            "batch_order": (self.batch_order in BATCH_ORDERS, f"one of {', '.join(BATCH_ORDERS)}"),
            "val_fraction": (0 <= self.val_fraction < 1, "in [0, 1)"),
            "warmup_ratio": (0 <= self.warmup_ratio < 1, "in [0, 1)"),
            "max_length": (self.max_length >= 8, ">= 8"),
            "save_every": (self.save_every >= 0, ">= 0"),
            "max_steps": (self.max_steps is None or self.max_steps >= 1, "null or >= 1"),
            "log_every": (self.log_every >= 1, ">= 1"),
        }
        for key, (ok, rule) in rules.items():
            if not ok:  # the first bad key, so that a file's error can name its line
                raise ConfigError((key,), f"must be {rule}, got {getattr(self, key)!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        try:
            return build(cls, values)
        except ConfigError as err:
            raise err.at(source) from None

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a YAML mapping; `overrides` (e.g. from the CLI) win over the file."""
        source = read_yaml(path)
        values = {} if source.data is None else source.data  # an empty file: the defaults
        try:
            if not isinstance(values, dict):
                raise ConfigError((), f"expected a mapping of config keys, got {values!r}")
            return build(cls, {**values, **overrides})
        except ConfigError as err:
            raise source.locate(err) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
