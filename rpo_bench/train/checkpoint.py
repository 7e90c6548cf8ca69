"""Resumable checkpoints: trainable weights, optimizer, scheduler and RNG state, no pickle.

Layout: <out>/checkpoints/step-000012/{weights,optimizer,rng}.safetensors + state.json.
A checkpoint is written to a temp folder and renamed into place, then older ones are
removed, so a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from rpo_bench.files import atomic_folder

PREFIX = "step-"


def checkpoints_dir(out: str | Path) -> Path:
    return Path(out) / "checkpoints"


def latest(out: str | Path) -> Path | None:
    found = sorted(checkpoints_dir(out).glob(f"{PREFIX}*"))
    return found[-1] if found else None


def trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors = {
        f"{idx}.{key}": value.detach().contiguous()
        for idx, slots in state["state"].items()
        for key, value in slots.items()
        if torch.is_tensor(value)
    }
    return tensors, {"param_groups": state["param_groups"]}


def save(
    out: str | Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    extra: dict[str, Any],
) -> Path:
    """Write checkpoint `step` atomically; keep only it."""
    root = checkpoints_dir(out)
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{PREFIX}{step:06d}"
    with atomic_folder(target) as tmp:
        _write(tmp, step, model, optimizer, scheduler, extra)
    for old in root.glob(f"{PREFIX}*"):
        if old != target:
            shutil.rmtree(old)
    return target


def _write(
    tmp: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    extra: dict[str, Any],
) -> None:
    weights = {n: p.detach().contiguous() for n, p in trainable(model).items()}
    save_file(weights, tmp / "weights.safetensors")
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    save_file(rng, tmp / "rng.safetensors")
    state = {"step": step, "optimizer": opt_meta, "scheduler": scheduler.state_dict(), **extra}
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n")


def load(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Restore a checkpoint into model/optimizer/scheduler/RNG; return its state.json."""
    state = json.loads((path / "state.json").read_text())
    params = trainable(model)
    weights = load_file(path / "weights.safetensors")
    if set(weights) != set(params):
        missing = sorted(set(params) ^ set(weights))[:5]
        raise ValueError(
            f"{path}: checkpoint does not match the model's trainable weights: {missing}"
        )
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in load_file(path / "optimizer.safetensors").items():
        idx, name = key.split(".", 1)
        slots.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": slots, **state["optimizer"]})
    scheduler.load_state_dict(state["scheduler"])
    rng = load_file(path / "rng.safetensors")
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(rng["cuda"]))
    return state
