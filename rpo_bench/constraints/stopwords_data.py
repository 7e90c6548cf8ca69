"""Offline English stopwords for NLTK (IFBench's `ratio:stop_words`).

IFBench counts stopwords with `nltk.corpus.stopwords.words("english")`, which NLTK reads
from `corpora/stopwords/english` on its data path and would otherwise download. The file
is taken from a PyPI wheel that ships NLTK's stopwords corpus verbatim and copied, checked
byte for byte, into NLTK's layout in the rpo_bench cache, where NLTK's own reader finds it.

Provenance: `llama-index-core==0.14.25` (installed with `--no-deps` by scripts/setup.sh;
only data files are read, `llama_index` is never imported), path
`llama_index/core/_static/nltk_cache/corpora/stopwords/` in the wheel, a copy of NLTK's
`stopwords` package (nltk_data `corpora/stopwords.zip`, the wheel carries that zip too and
its `stopwords/english` member is the same bytes).

- `english`: 1048 bytes, 198 words (the list as augmented in nltk_data issue #22),
  sha256 f6d005956f407dbc6ea32e5ff0c7e8e6f71488d3239b9023efdc7fc139d6375b
  The 19 words it adds to the older 179-word list all hold an apostrophe, which IFBench's
  `\\w+` tokens never do, so IFBench's count is the same under either list.
- `README`: the corpus' own description and sources,
  sha256 e0365fde880eadb522f844cba2774529969b66b7406db7643cf260dcd77d6541
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

from rpo_bench.constraints.nltk_data import data_root, has_files, on_path
from rpo_bench.files import atomic_folder

PACKAGE = "llama-index-core"
VERSION = "0.14.25"
RESOURCE = "corpora/stopwords/english"
_WHEEL_DIR = "llama_index/core/_static/nltk_cache/corpora/stopwords"
SHA256 = {
    "english": "f6d005956f407dbc6ea32e5ff0c7e8e6f71488d3239b9023efdc7fc139d6375b",
    "README": "e0365fde880eadb522f844cba2774529969b66b7406db7643cf260dcd77d6541",
}
INSTALL = f'pip install --no-deps "{PACKAGE}=={VERSION}" (scripts/setup.sh does it)'


class StopwordsUnavailable(RuntimeError):
    """The wheel that carries NLTK's stopwords is missing or is not the pinned copy."""


def _source(name: str) -> Path:
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError as err:
        raise StopwordsUnavailable(f"{PACKAGE} is not installed: {INSTALL}") from err
    path = Path(str(dist.locate_file(f"{_WHEEL_DIR}/{name}")))
    if not path.is_file():
        raise StopwordsUnavailable(f"{PACKAGE} {dist.version} has no {_WHEEL_DIR}/{name}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256[name]:
        raise StopwordsUnavailable(
            f"{path} is not the pinned copy of NLTK's stopwords ({PACKAGE} {dist.version}; "
            f"expected {VERSION}): {INSTALL}"
        )
    return path


def ensure_stopwords() -> Path:
    """Make NLTK find `corpora/stopwords/english` without a download; return the data root.

    StopwordsUnavailable if the pinned wheel is not installed and the cache lacks the copy.
    """
    root = data_root()
    corpus = root / "corpora" / "stopwords"
    if not has_files(corpus, SHA256):
        sources = {name: _source(name) for name in SHA256}
        # A foreign or partial folder is replaced; a new one loses to a concurrent writer's
        # (identical) copy.
        with atomic_folder(corpus, replace=corpus.exists()) as tmp:
            for name, path in sources.items():
                (tmp / name).write_bytes(path.read_bytes())
    return on_path(root)
