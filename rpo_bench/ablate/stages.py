"""The ablation's stages and the files each declares in its folder: what later stages and
the report read (their schemas: docs/architecture.md). The runner wires a stage's inputs to
its key, its work and these outputs; a stage that finishes without one of them fails there,
naming it, instead of a later stage failing on a missing file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    """A stage kind (its store folder), the file the next stage reads, the other files it
    always writes, and those it writes only sometimes (an LLM judge's counts)."""

    kind: str
    output: str
    also: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def path(self, folder: Path, name: str | None = None) -> Path:
        """A declared file of this stage's finished `folder` (default: its output)."""
        name = name or self.output
        if name not in (self.output, *self.also, *self.optional):
            raise KeyError(f"stage {self.kind!r} declares no file {name!r}")
        return folder / name

    def check(self, folder: Path) -> None:
        """Raise unless the work wrote every file it must."""
        missing = [n for n in (self.output, *self.also) if not (folder / n).exists()]
        if missing:
            raise RuntimeError(f"stage {self.kind!r} finished without {', '.join(missing)}")


JUDGING = "judging.json"  # an LLM judge's counts, beside the samples it judged
TRIGGERED = "triggered.json"  # the triggered filter's counts, beside the judged samples
SYSTEM_PROMPTS = "system_prompts.jsonl"  # free text: the system prompts a teacher wrote
GENERATED = "generated.json"  # ... and how many of its answers were rejected
PAIR_STATS = "pairs.stats.json"  # pairs.stats_path: the pairs' statistics, beside them
TRAIN_LOG = "log.jsonl"  # per-step loss and reward margins
TRAIN_SUMMARY = "train_summary.json"  # seconds and steps

CONVERSATIONS = Stage("conversations", "conversations.jsonl", optional=(SYSTEM_PROMPTS, GENERATED))
SAMPLES = Stage("samples", "samples.jsonl", optional=(JUDGING,))
JUDGED = Stage("judged", "samples.jsonl", optional=(TRIGGERED,))
PAIRS = Stage("pairs", "pairs.jsonl", also=(PAIR_STATS,))
TRAIN = Stage("train", "final", also=(TRAIN_LOG, TRAIN_SUMMARY))
EVAL = Stage("eval", "eval.json")
