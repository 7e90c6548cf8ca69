"""The reference cache (`TrainConfig.reference_cache`, train/reference.py): computed once per
key in canonical batches, read by runs with other seeds, epochs and losses, which then train
exactly as a run computing it fresh; other pairs or max_length give another key."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file
from test_train import _cfg, _pairs, _write

from rpo_bench import models
from rpo_bench.train import reference, train
from rpo_bench.train.trainer import (
    _check_resumable,
    _read_examples,
    _setup_accelerator,
    _setup_data,
    _setup_model,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _files(folder) -> list:
    return sorted(folder.glob("*.safetensors"))


def _canonical_fresh(pairs: str, cfg) -> torch.Tensor:
    """The reference computed here and now, outside any run, in the canonical batches."""
    rows = _read_examples(pairs, cfg)
    acc = _setup_accelerator(cfg)
    loaded = models.load(cfg.model)
    data = _setup_data(rows, pairs, cfg, loaded.tokenizer, acc)
    scorer = acc.prepare(_setup_model(loaded.model, cfg))
    pad = loaded.tokenizer.pad_token_id
    shared = cfg.share_prompt
    batches = reference.canonical_batches(data.tokenized.pairs, cfg.batch_size, pad, shared)
    return reference.reference_logps(scorer, batches, data.rows, acc)


def _outcome(result) -> tuple[list[float], dict]:
    losses = [r["loss"] for r in result.log if "loss" in r]
    return losses, load_file(result.final / "model.safetensors")


def test_cached_reference_equals_a_fresh_canonical_computation(tmp_path, prepared_model_dir):
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(8))
    cache = tmp_path / "reference"
    cfg = _cfg(tmp_path, "a", bf16=False, seed=3, val_fraction=0.25, max_steps=1,
               reference_cache=str(cache))  # fmt: skip
    train(pairs, cfg, quiet=True)
    (file,) = _files(cache)
    cached = load_file(file)[reference.TENSOR]
    assert cached.shape == (8, 2) and cached.dtype == torch.float32
    assert (cached < 0).all()  # every example, validation ones included
    # and LoRA or not: the reference is the base weights either way
    for lora in (cfg.lora, None):
        fresh = _canonical_fresh(pairs, _cfg(tmp_path, "b", bf16=False, lora=lora))
        assert torch.equal(cached, fresh)
    assert [p.name for p in cache.iterdir()] == [file.name]  # no temp file left


def test_another_seed_and_epochs_read_it_and_train_as_a_fresh_computation(
    tmp_path, prepared_model_dir, monkeypatch, capsys
):
    pairs = _write(tmp_path / "pairs.jsonl", _pairs(8))
    cache = tmp_path / "reference"
    first = _cfg(tmp_path, "first", bf16=False, seed=1, max_steps=1, reference_cache=str(cache))
    train(pairs, first, quiet=True)
    (file,) = _files(cache)
    written = file.stat().st_mtime_ns
    assert "computed in canonical batches" in capsys.readouterr().out

    computed = []
    real = reference.canonical_logps
    monkeypatch.setattr(reference, "canonical_logps",
                        lambda *a: computed.append(1) or real(*a))  # fmt: skip
    other = dict(bf16=False, seed=2, epochs=2, loss="dpo")
    read = train(pairs, _cfg(tmp_path, "read", **other, reference_cache=str(cache)), quiet=True)
    assert computed == [] and file.stat().st_mtime_ns == written and _files(cache) == [file]
    assert f"reference log-probs: read from {file}" in capsys.readouterr().out

    fresh_cache = tmp_path / "fresh"
    fresh = train(pairs, _cfg(tmp_path, "fresh", **other, reference_cache=str(fresh_cache)),
                  quiet=True)  # fmt: skip
    assert computed == [1] and [f.name for f in _files(fresh_cache)] == [file.name]
    (read_losses, read_weights), (fresh_losses, fresh_weights) = _outcome(read), _outcome(fresh)
    assert len(read_losses) == 8 and read_losses == fresh_losses
    assert read_weights.keys() == fresh_weights.keys()
    assert all(torch.equal(read_weights[k], fresh_weights[k]) for k in read_weights)


def test_other_pairs_or_max_length_give_another_key(tmp_path, prepared_model_dir):
    cache = tmp_path / "reference"
    rows = _pairs(6)
    pairs = _write(tmp_path / "pairs.jsonl", rows)
    changed = _write(tmp_path / "changed.jsonl", [*rows[:-1], {**rows[-1], "chosen": "kiwi"}])

    def run(name: str, path: str, **kw) -> None:
        cfg = _cfg(tmp_path, name, max_steps=1, reference_cache=str(cache), **kw)
        train(path, cfg, quiet=True)

    run("a", pairs)
    run("b", changed)
    assert len(_files(cache)) == 2
    run("c", pairs, max_length=48)
    assert len(_files(cache)) == 3
    run("d", pairs, seed=5, loss="ipo", lora=None, lr=1e-6)  # none of these is in the key
    assert len(_files(cache)) == 3


def test_a_crashed_write_leaves_nothing_and_a_bad_file_is_a_miss(tmp_path, monkeypatch):
    import safetensors.torch

    cache = reference.ReferenceCache(tmp_path / "reference")
    contents = {"rows": 3, "anything": "else"}
    ref = torch.randn(3, 2)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(safetensors.torch, "save_file", crash)
        with pytest.raises(OSError, match="disk full"):
            cache.write(contents, ref)
    assert list(cache.folder.iterdir()) == []
    assert cache.read(contents) is None
    path = cache.write(contents, ref)
    path = cache.write(contents, ref)  # a second writer of the same key: one whole file
    assert list(cache.folder.iterdir()) == [path] and oct(path.stat().st_mode)[-3:] == "644"
    assert torch.equal(cache.read(contents), ref)
    assert cache.read({**contents, "anything": "other"}) is None  # another key
    path.write_bytes(path.read_bytes()[:40])  # a damaged file: recomputed, not trusted
    assert cache.read(contents) is None


def test_a_run_resumes_with_another_cache_folder(tmp_path):
    cfg = _cfg(tmp_path, "a", reference_cache=str(tmp_path / "one"))
    state = json.loads(json.dumps({"config": cfg.to_dict()}))
    _check_resumable(state, _cfg(tmp_path, "a", reference_cache=None), tmp_path)
    _check_resumable(state, _cfg(tmp_path, "a", reference_cache=str(tmp_path / "two")), tmp_path)
    with pytest.raises(ValueError, match="max_length"):
        _check_resumable(state, _cfg(tmp_path, "a", max_length=48), tmp_path)


@pytest.mark.slow
def test_two_processes_share_out_the_canonical_batches(tmp_path, prepared_model_dir):
    """2 processes (torchrun, gloo) compute the canonical reference between them, 3 batches
    for 2 (one runs a spare forward), and get the same numbers as one process; a second
    2-process run reads them."""
    import subprocess
    import sys

    import yaml

    pairs = _write(tmp_path / "pairs.jsonl", _pairs(6))
    settings = {"batch_size": 2, "max_length": 64, "bf16": False, "max_steps": 1,
                "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]}}  # fmt: skip

    def two(name: str) -> str:
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({**settings, "reference_cache": str(tmp_path / "two")}))
        args = ["--pairs", pairs, "--config", str(config), "--out", str(tmp_path / name)]
        cmd = [sys.executable, "-m", "rpo_bench.cli", "train", *args, "--quiet", "--processes", "2"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert "computed in canonical batches" in two("first")
    (file,) = _files(tmp_path / "two")
    one = _cfg(tmp_path, "one", **{**settings, "reference_cache": str(tmp_path / "one")})
    train(pairs, one, quiet=True)
    (single,) = _files(tmp_path / "one")
    assert single.name == file.name  # DDP is no part of the key
    torch.testing.assert_close(load_file(file), load_file(single), atol=1e-5, rtol=0)
    assert f"read from {file}" in two("second")
