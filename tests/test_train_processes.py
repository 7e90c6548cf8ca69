"""Two processes (torchrun, gloo, DDP on CPU) train exactly as one with the same global
batch: the same pairs in every step, the same per-step losses and the same adapter."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file
from test_train import _pairs, _write


def run(tmp_path, name: str, processes: int, batch_size: int) -> tuple[list[float], dict]:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "batch_size": batch_size, "max_length": 64, "warmup_ratio": 0.25, "epochs": 2,
        "bf16": False, "lr": 1e-3, "loss": "rpo",
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
    }))  # fmt: skip
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(8))
    args = ["train", "--pairs", pairs, "--config", str(config), "--out", str(tmp_path / name),
            "--quiet"]  # fmt: skip
    # `--processes 2` starts torchrun itself (gloo, ACCELERATE_USE_CPU=1)
    cmd = [sys.executable, "-m", "rpo_bench.cli", *args, "--processes", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    log = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in log if "loss" in r], load_file(
        tmp_path / name / "final" / "model.safetensors"
    )


@pytest.mark.slow
def test_two_processes_equal_one_with_the_same_global_batch(tmp_path):
    one_losses, one = run(tmp_path, "one", processes=1, batch_size=4)
    two_losses, two = run(tmp_path, "two", processes=2, batch_size=2)
    assert len(one_losses) == len(two_losses) == 4  # 8 pairs / 4 per step x 2 epochs
    # the logged loss is the whole global batch's, not rank 0's half
    assert two_losses == pytest.approx(one_losses, abs=1e-5)
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=1e-4, msg=key)


def test_the_launch_commands_flags_are_valid():
    """On GPUs `--processes` builds an `accelerate launch` command; its flags parse with
    accelerate's own parser (the README's multi-GPU command is the same command)."""
    import argparse

    from accelerate.commands.launch import launch_command_parser

    from rpo_bench.train.trainer import add_parser, launch

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    zero3 = "configs/accelerate/zero3_offload.yaml"
    args = parser.parse_args(["train", "--pairs", "p.jsonl", "--out", "runs/x", "--processes",
                              "8", "--accelerate-config", zero3])  # fmt: skip
    cmd = launch(args)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    parsed = launch_command_parser().parse_args(cmd[3:])
    assert (parsed.config_file, parsed.num_processes, parsed.module) == (
        zero3, 8, True)  # fmt: skip
    assert parsed.training_script == "rpo_bench.cli"
    assert parsed.training_script_args == ["train", "--pairs", "p.jsonl", "--out", "runs/x"]
    # on CPU: torchrun
    args.accelerate_config = None
    if not torch.cuda.is_available():
        assert launch(args)[1:5] == ["-m", "torch.distributed.run", "--standalone",
                                     "--nproc_per_node=8"]  # fmt: skip
