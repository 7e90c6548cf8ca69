"""Dataclasses built from YAML mappings: unknown keys, wrongly typed values and bad values
are `ConfigError`s that name their key path; `read_yaml` keeps each key's line, so a file's
errors read ``<file>:<line>: field 'a.b[2]' <problem>`` (rpo_bench.fields), never a
TypeError from deep inside."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rpo_bench.fields import Field
from rpo_bench.files import read_text

Key = tuple[Any, ...]  # a key path: mapping keys and list indices, e.g. ("grid", "noise", 0)


class ConfigError(ValueError):
    """A bad field: its key path, the problem, and where (the config's name, or file:line)."""

    def __init__(self, path: Key, problem: str, where: str = "config"):
        self.path, self.problem, self.where = tuple(path), problem, where
        super().__init__(self.message())

    def message(self) -> str:
        if not self.path:  # the document itself (e.g. not a mapping): there is no field
            return f"{self.where}: {self.problem}"
        field = Field(self.where)
        for key in self.path:  # an int is a list index ([2]); any other key reads as text
            field = field(key if type(key) is int else str(key))
        return str(field.error(self.problem))

    def at(self, where: str) -> ConfigError:
        """The same error, placed at `where`."""
        return ConfigError(self.path, self.problem, where)

    def under(self, *prefix: Any) -> ConfigError:
        """The same error for a value nested at `prefix`."""
        return ConfigError((*prefix, *self.path), self.problem, self.where)


@dataclass(frozen=True)
class Source:
    """A YAML file's data and the 1-based line of each key path in it."""

    file: Path
    data: Any
    lines: dict[Key, int]

    def locate(self, err: ConfigError) -> ConfigError:
        """`err` placed at its line; a key the file leaves out (a default) at its nearest
        section in the file."""
        path = err.path
        while path not in self.lines:
            path = path[:-1]
        return err.at(f"{self.file}:{self.lines[path]}")


def read_yaml(file: str | Path) -> Source:
    """A YAML file's data with its key paths' lines; invalid YAML is an error naming the file."""
    loader = yaml.SafeLoader(read_text(file))
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
        lines: dict[Key, int] = {(): 1 if node is None else node.start_mark.line + 1}
        if node is not None:
            _record_lines(loader, node, (), lines, set())
    except yaml.YAMLError as err:
        raise ValueError(f"{file}: not valid YAML ({err})") from None
    finally:
        loader.dispose()
    return Source(Path(file), data, lines)


def _record_lines(
    loader: yaml.SafeLoader, node: yaml.Node, path: Key, lines: dict[Key, int], seen: set[int]
) -> None:
    """Each key path's line below `node`: a mapping entry's key line (where a reader looks
    for it, also when its value is a block on the next lines), a list item's own line. An
    aliased node is walked once, so aliases cannot make the walk blow up."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):  # merge keys (<<) are already flattened into it
        entries = [(loader.construct_object(k, deep=True), k, v) for k, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        entries = [(i, v, v) for i, v in enumerate(node.value)]
    else:
        return
    for key, mark_node, value in entries:
        lines[(*path, key)] = mark_node.start_mark.line + 1
        _record_lines(loader, value, (*path, key), lines, seen)


def build(cls: type, raw: Any, path: Key = ()) -> Any:
    """A dataclass from a mapping: unknown keys and wrongly typed values are errors, as
    are the values its own checks (__post_init__) reject."""
    if not isinstance(raw, dict):
        raise ConfigError(path, f"expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = next((k for k in raw if k not in fields), None)
    if unknown is not None:
        raise unknown_key((*path, unknown), fields)
    hints = typing.get_type_hints(cls)
    values = {k: coerce(hints[k], v, (*path, k)) for k, v in raw.items()}
    try:
        return cls(**values)
    except ConfigError as err:  # the class's own check names a key below this mapping
        raise err.under(*path) from None


def coerce(hint: Any, value: Any, path: Key) -> Any:
    """`value` as type `hint` (an int where a float is asked becomes a float), or an error."""
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else build(hint, value, path)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options[:-1]:  # the first type the value fits; the last one's error
            try:
                return coerce(option, value, path)
            except ValueError:
                pass
        return coerce(options[-1], value, path)
    if origin is tuple:
        items = value if isinstance(value, list | tuple) else [value]
        return tuple(coerce(args[0], v, (*path, i)) for i, v in enumerate(items))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {value!r}")
        if args and dataclasses.is_dataclass(args[1]):
            return {k: build(args[1], v, (*path, k)) for k, v in value.items()}
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {value!r}")
        return [coerce(args[0], v, (*path, i)) for i, v in enumerate(value)] if args else value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, str):
        fix = number_fix(value, integer=hint is int)
        if fix:
            kind = "an integer" if hint is int else "a number"
            raise ConfigError(path, f"expected {kind}, got the string {value!r} ({fix})")
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(path, f"expected {hint.__name__}, got {value!r}")
    return value


def number_fix(text: str, integer: bool = False) -> str | None:
    """How to write the number a string holds so that YAML reads it as one: YAML 1.1 reads
    an exponent as a float only with a dot in the mantissa and a signed exponent (5e-4 and
    1.0e3 are strings, 5.0e-4 and 1.0e+3 floats). None where the string is no such number."""
    try:
        number = float(text)
    except ValueError:
        return None
    unquoted = _yaml_number(text)
    if unquoted is not None:  # quoted in the file: unquoted it is a number
        return "write it without quotes" if not integer or isinstance(unquoted, int) else None
    if integer:
        written = str(int(number)) if number.is_integer() else None
    else:
        exponent = re.fullmatch(r"([-+]?\d+)(\.\d*)?([eE])([-+]?)(\d+)", text)
        written = (
            f"{exponent[1]}{exponent[2] or '.0'}{exponent[3]}{exponent[4] or '+'}{exponent[5]}"
            if exponent
            else repr(number)
        )
    if written is None or _yaml_number(written) != number:  # never suggest what YAML misreads
        return None
    return f"YAML reads {text} as a string: write {written}"


def _yaml_number(text: str) -> int | float | None:
    """The number YAML reads `text` as, unquoted; None where it reads something else."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def unknown_key(path: Key, valid: Iterable[str]) -> ConfigError:
    """The error for the key at `path`, which is none of `valid`."""
    return ConfigError(path, f"is an unknown key; valid keys: {', '.join(valid)}")


def one_of(value: Any, valid: Iterable[str], path: Key) -> None:
    """An error unless `value` is one of `valid`, listing them."""
    valid = list(valid)
    if value not in valid:
        problem = f"has the unknown value {value!r}; valid values: {', '.join(valid)}"
        raise ConfigError(path, problem)
