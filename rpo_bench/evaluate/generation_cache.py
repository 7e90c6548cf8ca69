"""Each played turn's generations on disk, so an interrupted multi-turn run resumes there.

A multi-turn task generates turns 1..T-1 itself (`MultiTurnTask`); every turn's replies
are stored as soon as that turn's batch returns. The key is the model's fingerprint (its
weight and config files' contents), the task, the conversation and turn, the exact
rendered prompt (which holds the conversation so far), the decoding settings and, when
sampling, the seed: a change to any of them misses the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from rpo_bench.textcache import TextCache

# Files whose contents decide what a model generates.
_MODEL_FILES = ("*.safetensors", "*.bin", "*.json", "*.model", "*.txt", "*.jinja")


@functools.cache
def _folder_digest(folder: str, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for pattern in _MODEL_FILES for p in Path(folder).glob(pattern)):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def model_fingerprint(lm: Any) -> str:
    """What identifies the model lm-eval generates with: a hash of its local files' contents,
    or for a hub model its name and commit."""
    model = getattr(lm, "model", None)
    config = getattr(model, "config", None)
    name = str(getattr(config, "_name_or_path", "") or getattr(lm, "pretrained", "") or "")
    folder = Path(name)
    if name and folder.is_dir():
        files = sorted(p for pattern in _MODEL_FILES for p in folder.glob(pattern))
        stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
        return f"files:{_folder_digest(str(folder.resolve()), stamp)}"
    commit = getattr(config, "_commit_hash", None)
    if name and commit:
        return f"hub:{name}@{commit}"
    raise ValueError("cannot fingerprint the model (no local folder or hub commit)")


class GenerationCache(TextCache):
    """Replies keyed by (model fingerprint, sha256 of task, conversation, turn, prompt,
    decoding settings and seed)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "generations")

    @staticmethod
    def key(task: str, conversation: str, turn: int, prompt: str, settings: dict, seed: Any) -> str:
        sampling = bool(settings.get("do_sample")) or float(settings.get("temperature") or 0) > 0
        blob = json.dumps(
            [task, conversation, turn, prompt, settings, seed if sampling else None],
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()
