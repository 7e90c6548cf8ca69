"""Reference log-probs: the reference model's summed log-probs of every example's two replies,
computed once before training, and a cache that shares them between runs.

The reference is the model before any step (full fine-tuning) or the base with the LoRA
adapters disabled: the same weights either way, so the numbers do not depend on `lora`.
Without a cache they are computed in the run's own training batches. With
`TrainConfig.reference_cache` (a folder) they are computed in CANONICAL batches, which no
training seed changes: every tokenized example (validation ones included), sorted by length
with ties broken by the fixed seed `CANONICAL_SEED` (`batches.make_batches`), `batch_size`
examples per batch. Runs on the same examples with the same model, precision and batch
size (other seeds, epochs, losses, margin modes, LoRA or not) then read one file instead of
recomputing it. In float32 the canonical numbers equal the training batches' up to rounding;
under bf16 autocast they can differ a little (batch composition changes the arithmetic), so
a run that reads the cache trains against the canonical numbers. Its learning measurement
still starts from exact ties: at step 0 the policy is the reference, and where its first
batch agrees with these numbers they stand for it (`train.learning.set_logps`). The gold
set's reference goes through the same cache, so a grid computes it once per model.

A file `<folder>/<key>.safetensors` holds the [examples, 2] float32 tensor; its metadata
holds the key's contents (`key_contents`), checked on reading. Files are written to a temp
file and renamed, so a crash leaves none half-written and two processes computing the same
key at once leave one whole file (the last writer's, the same numbers).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rpo_bench.files import sha256_of
from rpo_bench.train.batches import Batch, make_batches
from rpo_bench.train.tokenize import Encoded

CANONICAL_SEED = 0  # ties in length: a seed-0 run's training batches (one process, no split)
FORMAT = 1  # of the key's contents; a change makes every earlier file a miss
PACKAGE = Path(__file__).resolve().parent.parent
# the code the numbers come from, besides the examples' tokens (which the key holds)
CODE = ("train/reference.py", "train/logps.py", "train/batches.py", "models.py")
WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
TENSOR = "reference"


@torch.no_grad()
def reference_logps(run_scorer: Any, batches: list[Batch], n_pairs: int, acc: Any) -> torch.Tensor:
    """Reference log-probs of the pairs in `batches` (rows of the others stay 0).

    Full fine-tuning: the model before any step. LoRA: the base with adapters disabled.
    """
    model = acc.unwrap_model(run_scorer).model
    ref = torch.zeros(n_pairs, 2)
    run_scorer.eval()
    context = model.disable_adapter() if hasattr(model, "disable_adapter") else torch.no_grad()
    with context:
        for batch in batches:
            with acc.autocast():
                logps = run_scorer(**batch.inputs(acc.device))
            ref[batch.index] = torch.stack(logps.float().cpu().chunk(2), dim=1)
    return ref


def canonical_batches(
    pairs: list[Encoded], batch_size: int, pad_id: int, share_prompt: bool
) -> list[Batch]:
    """Every example in seed-independent batches: sorted by length, ties by CANONICAL_SEED."""
    return make_batches(pairs, batch_size, pad_id, CANONICAL_SEED, share_prompt)


def canonical_logps(run_scorer: Any, batches: list[Batch], n_pairs: int, acc: Any) -> torch.Tensor:
    """`reference_logps` of `batches`, shared out among the processes (every process
    runs as many forwards, which FSDP/ZeRO-3 need) and summed: every process gets all."""
    world = acc.num_processes
    if world == 1:
        return reference_logps(run_scorer, batches, n_pairs, acc)
    mine = batches[acc.process_index :: world]
    ref = reference_logps(run_scorer, mine, n_pairs, acc)
    spare = -(-len(batches) // world) - len(mine)
    if spare:  # forwards to keep in step with the others; their numbers are not used
        reference_logps(run_scorer, batches[:1] * spare, n_pairs, acc)
    return acc.reduce(ref.to(acc.device), reduction="sum").cpu()  # each row on one process


def model_identity(path: str) -> dict[str, Any]:
    """What identifies the weights at `path` (a folder, or a hub id in the Hugging Face
    cache): the folder, the prepared model's `rpo_bench_source.json`, config.json's sha256
    and each weights file's size and modification time (a rewrite gives another key)."""
    folder = Path(path)
    if not folder.is_dir():
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(path, "config.json")  # in snapshots/<commit>/
        if not isinstance(found, str):
            return {"path": path}
        folder = Path(found).parent
    source = folder / "rpo_bench_source.json"
    config = folder / "config.json"
    weights = {
        p.name: [p.stat().st_size, p.stat().st_mtime_ns]
        for p in sorted(folder.iterdir())
        if p.name.endswith(WEIGHTS)
    }
    return {
        "path": path,
        "folder": str(folder.resolve()),
        "source": json.loads(source.read_text()) if source.exists() else None,
        "config_sha256": sha256_of(config) if config.exists() else None,
        "weights": weights,
    }


def examples_sha256(pairs: list[Encoded]) -> str:
    """The tokenized examples' sha256: the token ids every reference log-prob is of."""
    digest = hashlib.sha256()
    for e in pairs:
        row = [e.index, e.prompt_ids, e.chosen_ids, e.rejected_ids, e.rejected_prompt_ids]
        digest.update(json.dumps(row).encode() + b"\n")
    return digest.hexdigest()


def code_sha256() -> str:
    digest = hashlib.sha256()
    for part in CODE:
        digest.update(part.encode() + b"\0" + (PACKAGE / part).read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Computation:
    """Everything a cached reference depends on besides the examples."""

    model_path: str  # the resolved model (`LoadedModel.path`)
    pairs_file: str
    kind: str  # the example kind (`config.example_kind`)
    max_length: int
    share_prompt: bool
    batch_size: int  # the canonical batches'
    bf16: bool  # autocast, resolved (`trainer._bf16`)
    device: str  # cpu | cuda: their kernels round differently
    distributed: str | None  # FSDP / DeepSpeed (they may cast weights); None otherwise


def key_contents(c: Computation, rows: int, pairs: list[Encoded]) -> dict[str, Any]:
    """The key's contents: everything the numbers depend on."""
    return {
        "format": FORMAT,
        "model": model_identity(c.model_path),
        "pairs_sha256": sha256_of(Path(c.pairs_file)),
        "rows": rows,
        "kind": c.kind,
        "max_length": c.max_length,
        "share_prompt": c.share_prompt,
        "examples_sha256": examples_sha256(pairs),
        "batching": {"order": "length", "tie_seed": CANONICAL_SEED, "batch_size": c.batch_size},
        "bf16": c.bf16,
        "device": c.device,
        "distributed": c.distributed,
        "code_sha256": code_sha256(),
        "torch": torch.__version__,
        "transformers": importlib.metadata.version("transformers"),
    }


def _canonical_json(contents: dict[str, Any]) -> str:
    return json.dumps(contents, sort_keys=True, separators=(",", ":"))


def key_of(contents: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical_json(contents).encode()).hexdigest()[:32]


class ReferenceCache:
    """A folder of reference tensors, one safetensors file per key."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def file(self, contents: dict[str, Any]) -> Path:
        return self.folder / f"{key_of(contents)}.safetensors"

    def read(self, contents: dict[str, Any]) -> torch.Tensor | None:
        """The cached tensor, or None: absent, unreadable, or not of these contents."""
        from safetensors import safe_open

        path = self.file(contents)
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                if (f.metadata() or {}).get("key") != _canonical_json(contents):
                    return None
                ref = f.get_tensor(TENSOR)
        except Exception:  # a damaged file (safetensors' own error types vary): recompute
            return None
        if ref.dtype != torch.float32 or tuple(ref.shape) != (contents["rows"], 2):
            return None
        return ref

    def write(self, contents: dict[str, Any], ref: torch.Tensor) -> Path:
        """Write the tensor whole or not at all (temp file, then rename: the last of two
        writers wins)."""
        from safetensors.torch import save_file

        path = self.file(contents)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.folder)
        os.close(fd)
        try:
            save_file({TENSOR: ref.float().contiguous()}, tmp,
                      metadata={"key": _canonical_json(contents)})  # fmt: skip
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are for everyone to read
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def shared_reference(
    run_scorer: Any, pairs: list[Encoded], rows: int, c: Computation, pad_id: int, folder: str,
    acc: Any,
) -> tuple[torch.Tensor, str]:  # fmt: skip
    """(every example's reference log-probs in canonical batches, what happened): read
    from the cache in `folder`, or computed and written there. The main process decides;
    every process gets the same tensor."""
    cache = ReferenceCache(folder)
    contents = key_contents(c, rows, pairs)
    path = cache.file(contents)
    ref = cache.read(contents) if acc.is_main_process else None
    if acc.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        ref = broadcast_object_list([ref])[0]
    if ref is not None:
        return ref, f"reference log-probs: read from {path}"
    batches = canonical_batches(pairs, c.batch_size, pad_id, c.share_prompt)
    ref = canonical_logps(run_scorer, batches, rows, acc)
    if acc.is_main_process:
        cache.write(contents, ref)
    return ref, f"reference log-probs: computed in canonical batches, saved to {path}"
