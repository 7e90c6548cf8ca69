"""Compact trainer: DPO, RPO (margin-aware DPO), IPO and noise-aware DPO on preference pairs,
SFT and KTO on single responses; LoRA or full fine-tuning."""

from rpo_bench.train.config import LoraSettings, TrainConfig
from rpo_bench.train.launch import add_parser
from rpo_bench.train.loop import NonFiniteLossError
from rpo_bench.train.loss import KtoLogps, PairLogps, kto_loss, preference_loss, sft_loss
from rpo_bench.train.trainer import TrainResult, train

__all__ = [
    "LoraSettings",
    "KtoLogps",
    "NonFiniteLossError",
    "PairLogps",
    "TrainConfig",
    "TrainResult",
    "add_parser",
    "kto_loss",
    "preference_loss",
    "sft_loss",
    "train",
]
