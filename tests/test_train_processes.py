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


def run(
    folder,
    name: str,
    processes: int,
    batch_size: int,
    *,
    save_every: int = 0,
    fault: str | None = None,
    resume: bool = False,
) -> subprocess.CompletedProcess:
    config = folder / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "batch_size": batch_size, "max_length": 64, "warmup_ratio": 0.25, "epochs": 2,
        "bf16": False, "lr": 1e-3, "loss": "rpo", "save_every": save_every,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
    }))  # fmt: skip
    pairs = _write(folder / "pairs.jsonl", _pairs(8))
    args = ["train", "--pairs", pairs, "--config", str(config), "--out", str(folder / name),
            "--quiet", *(["--resume"] if resume else [])]  # fmt: skip
    # `--processes 2` starts torchrun itself (gloo, ACCELERATE_USE_CPU=1)
    cmd = [sys.executable, "-m", "rpo_bench.cli", *args, "--processes", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if fault:
        env["RPO_BENCH_FAULT"] = f"kill:{fault}"
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def outcome(folder, name: str) -> tuple[list[float], dict]:
    """Each step's logged loss (the last row of a step that was logged twice) and the final
    adapter's weights."""
    log = [json.loads(line) for line in (folder / name / "log.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in log if "loss" in r}
    return [losses[k] for k in sorted(losses)], load_file(
        folder / name / "final" / "model.safetensors"
    )


def trained(folder, name: str, processes: int, batch_size: int) -> tuple[list[float], dict]:
    done = run(folder, name, processes, batch_size)
    assert done.returncode == 0, done.stderr[-3000:]
    return outcome(folder, name)


def assert_same(a: tuple[list[float], dict], b: tuple[list[float], dict]) -> None:
    assert len(a[0]) == len(b[0]) == 4  # 8 pairs / 4 per step x 2 epochs
    assert b[0] == pytest.approx(a[0], abs=1e-5)
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        torch.testing.assert_close(b[1][key], a[1][key], atol=1e-5, rtol=1e-4, msg=key)


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> tuple[list[float], dict]:
    """2 processes at batch 2, uninterrupted."""
    return trained(tmp_path_factory.mktemp("two"), "two", processes=2, batch_size=2)


@pytest.mark.slow
def test_two_processes_equal_one_with_the_same_global_batch(tmp_path, two):
    # the logged loss is the whole global batch's, not rank 0's half
    assert_same(trained(tmp_path, "one", processes=1, batch_size=4), two)


@pytest.mark.slow
def test_a_resumed_two_process_run_equals_an_uninterrupted_one(tmp_path, two):
    """Both processes killed (SIGKILL) after step 2's checkpoint; `--resume` continues from
    it, in 2 processes again."""
    killed = run(tmp_path, "two", 2, 2, save_every=2, fault="train-step-2")
    assert killed.returncode != 0
    assert not (tmp_path / "two" / "final").exists()
    assert [p.name for p in (tmp_path / "two" / "checkpoints").iterdir()] == ["step-000002"]
    resumed = run(tmp_path, "two", 2, 2, save_every=2, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same(outcome(tmp_path, "two"), two)


def test_the_launch_commands_flags_are_valid():
    """On GPUs `--processes` builds an `accelerate launch` command; its flags parse with
    accelerate's own parser (the README's multi-GPU command is the same command)."""
    import argparse

    from accelerate.commands.launch import launch_command_parser

    from rpo_bench.train.launch import add_parser, launch

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
