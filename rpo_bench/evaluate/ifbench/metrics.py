"""IFBench's strict and loose scoring (`ifbench.evaluation_lib`'s rules) and its report.

With `allow_unavailable=True` an instruction whose checker data is missing is left out of
every accuracy instead of failing the run, logged once, and counted in the two
`*_unavailable` metrics. `breakdown` gives evaluation_lib's per-category and
per-instruction report.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rpo_bench.evaluate.ifbench.checkers import (
    CheckerUnavailable,
    _no_downloads,
    build,
    unavailable_ids,
)

log = logging.getLogger(__name__)

_warned: set[str] = set()  # ids logged as unavailable
_raised: set[str] = set()  # ids logged as raising on a response


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


def score_doc(doc: Mapping[str, Any], reply: str) -> dict[str, Any]:
    """`score` of a document; its `allow_unavailable` field (set by load_docs) is the policy."""
    return score(
        doc["instruction_id_list"],
        doc["kwargs"],
        doc["prompt"],
        reply,
        allow_unavailable=bool(doc.get("allow_unavailable", False)),
    )


def coverage(rows: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, str]]:
    """How many prompts have every instruction checkable here, and the ids that are not."""
    missing = unavailable_ids(sorted({i for row in rows for i in row["instruction_id_list"]}))
    whole = sum(not set(row["instruction_id_list"]) & set(missing) for row in rows)
    return whole, missing


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
