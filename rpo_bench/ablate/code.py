"""Which code computes each stage, as a fingerprint: a change to it makes a stored result stale.

A stage's fingerprint is the sha256 of the source files its logic lives in (paths relative
to the rpo_bench package; a folder means every .py file under it). Over-inclusion only
costs a recomputation; a missing path would let a stale result through, so each stage
lists its own folder and everything below it that changes its output.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent

# the LLM clients, their caches and how a config builds them, for the stages that may call
# an LLM (free-text data)
LLM = ("openai_client.py", "textcache.py", "ablate/builders.py")
# the stages' work, from their keyed arguments to the calls into the stages' packages
WORK = "ablate/stages.py"
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "conversations": ("data/conversations.py", "data/verifiable.py", "data/prompt.py",
                      "data/freetext.py", "constraints", "resources/seeds", WORK, *LLM),
    "samples": ("data", "rollout", "judge", "constraints", "models.py", "cpu.py", WORK, *LLM),
    "judged": ("judge/noise.py", "judge/triggered.py", "constraints", WORK, *LLM),
    "pairs": ("pairs", "constraints", "data/prompt.py", WORK, *LLM),
    "train": ("train", "models.py", "files.py", "cpu.py", WORK),
    "eval": ("evaluate", "judge", "rollout", "data", "constraints", "models.py", "cpu.py",
             "resources/ifeval", "resources/ifbench", WORK, *LLM),
}  # fmt: skip


def _files(part: str) -> list[Path]:
    path = PACKAGE / part
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [path]


@functools.cache
def code_version(stage: str) -> str:
    """sha256 (16 hex digits) of the stage's source files, names and contents."""
    if stage not in STAGE_CODE:
        raise KeyError(f"no code listed for stage {stage!r}; known: {', '.join(STAGE_CODE)}")
    digest = hashlib.sha256()
    for part in STAGE_CODE[stage]:
        for path in _files(part):
            digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
