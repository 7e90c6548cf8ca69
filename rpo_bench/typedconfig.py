"""Dataclasses built from YAML mappings: unknown keys and wrongly typed values are errors
naming where they are (file and key), never a TypeError from deep inside."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def build(cls: type, raw: Any, where: str) -> Any:
    """A dataclass from a mapping: unknown keys and wrongly typed values are errors."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: coerce(hints[k], v, f"{where}.{k}") for k, v in raw.items()})


def coerce(hint: Any, value: Any, where: str) -> Any:
    """`value` as type `hint` (an int where a float is asked becomes a float), or an error."""
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else build(hint, value, where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options[:-1]:  # the first type the value fits; the last one's error
            try:
                return coerce(option, value, where)
            except ValueError:
                pass
        return coerce(options[-1], value, where)
    if origin is tuple:
        items = value if isinstance(value, list | tuple) else [value]
        return tuple(coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(items))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        if args and dataclasses.is_dataclass(args[1]):
            return {k: build(args[1], v, f"{where}.{k}") for k, v in value.items()}
        return dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return [coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
