"""Compact preference trainer: DPO, RPO (margin-aware DPO), IPO; LoRA or full fine-tuning."""

from rpo_bench.train.config import LoraSettings, TrainConfig
from rpo_bench.train.loop import NonFiniteLossError
from rpo_bench.train.loss import PairLogps, preference_loss
from rpo_bench.train.trainer import TrainResult, add_parser, train

__all__ = [
    "LoraSettings",
    "NonFiniteLossError",
    "PairLogps",
    "TrainConfig",
    "TrainResult",
    "add_parser",
    "preference_loss",
    "train",
]
