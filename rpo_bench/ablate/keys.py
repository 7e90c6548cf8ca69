"""Stage keys: what a stage reads, hashed (`store.key_of`), so equal inputs reuse a result.

A stage's work is called with exactly the arguments its key is built from
(`runner.Runner._run`): config sections, plain values, and earlier stages' results
(`Upstream`: the work gets the folder, the key gets that stage's own inputs). So a key
cannot leave out anything the work reads.

Three rules keep stores made by earlier code at their keys wherever the work is unchanged:
- `ADDED`: a config field added after stores existed stays out of a key at its default
  value (a store made before it existed computed exactly that default);
- `RENAMED`: a renamed field keeps its old name in keys;
- an argument that is None is left out (the stage does not have that input at all: a
  data file, a triggered-constraint filter, a judge for verifiable data).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

# Config fields added after stores existed, with the value every earlier store computed.
ADDED: dict[str, dict[str, Any]] = {
    # free-text data (issue 14): earlier stores are verifiable-data studies
    "Data": {"kind": "verifiable", "file": None, "generate": None},
    # judge client options and the triggered filter (issue 14): earlier judges had neither
    "Judge": {"options": {}, "triggered": "all"},
    # the LLM reverser (issue 14): earlier pairs had verifiable constraints only
    "Pairs": {"reverser": None},
    # the teacher's history and critic pool (issue 14); seeds that resample (issue 28)
    "Sampling": {"teacher": None, "pool": "policy", "per_seed": False},
    # evaluation's own engine (issue 25): earlier evaluations ran on the sampling engine,
    # whose default these are (a store made with another sampling engine evaluated with it,
    # and its key said nothing about it: that was the bug this field fixes)
    "Eval": {"backend": "hf", "engine": "fast"},
}

# Config fields renamed since stores existed: keys keep the old name.
RENAMED: dict[str, dict[str, str]] = {
    # `keep_untriggered` said the opposite of what the flag kept (issue 14)
    "Pairs": {"keep_unanimous": "keep_untriggered"},
}


class Upstream(NamedTuple):
    """An earlier stage's result as a later stage reads it: the work reads `folder` (or,
    for an untrained model, its name), the key holds the `inputs` that made it."""

    folder: Path | str
    inputs: dict[str, Any]


def keyed(section: Any) -> dict[str, Any]:
    """A config section (dataclass) as it enters a stage key."""
    name = type(section).__name__
    added, renamed = ADDED.get(name, {}), RENAMED.get(name, {})
    return {renamed.get(k, k): v for k, v in dataclasses.asdict(section).items()
            if not (k in added and v == added[k])}  # fmt: skip


def key_form(value: Any) -> Any:
    """One stage argument as its key holds it."""
    if isinstance(value, Upstream):
        return value.inputs
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return keyed(value)
    return value


def inputs_of(args: dict[str, Any]) -> dict[str, Any]:
    """A stage's key inputs: each argument in its key form, None ones left out."""
    return {name: key_form(v) for name, v in args.items() if v is not None}


def work_args(args: dict[str, Any]) -> dict[str, Any]:
    """The same arguments as the stage's work reads them: an upstream stage as its folder."""
    return {name: v.folder if isinstance(v, Upstream) else v for name, v in args.items()}
