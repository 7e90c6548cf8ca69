"""rpo_bench's own NLTK data folder, where the offline copies of Punkt, the stopwords and
the POS tagger are written once, in NLTK's layout, for NLTK's own loaders to read."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import nltk

from rpo_bench.paths import cache_dir


def data_root() -> Path:
    """The folder (inside the rpo_bench cache) that holds the NLTK data."""
    return cache_dir() / "nltk_data"


def has_files(folder: Path, sha256: Mapping[str, str]) -> bool:
    """Whether `folder` holds each named file with its pinned sha256."""
    return all(
        (folder / name).is_file()
        and hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
        for name, digest in sha256.items()
    )


def on_path(root: Path) -> Path:
    """Put `root` first on NLTK's data path, here and, through NLTK_DATA, in subprocesses
    (the lm_eval CLI, workers); returns it."""
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    paths = os.environ.get("NLTK_DATA", "")
    if str(root) not in paths.split(os.pathsep):
        os.environ["NLTK_DATA"] = os.pathsep.join(p for p in (str(root), paths) if p)
    return root
