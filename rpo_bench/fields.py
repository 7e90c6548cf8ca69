"""The one way to report bad input: ``<file:line>: field 'a.b[2]' <problem>``.

Every reader (pairs, samples, conversations, SysBench, Multi-IF, free text) raises its
field errors through `Field`, so the messages have one shape and the CLI can print them
as they are (exit 2, no traceback).
"""

from __future__ import annotations

from typing import Any


class Field:
    """A place in the input: `where` (file:line, or a row's name) and a field path."""

    def __init__(self, where: str, name: str = ""):
        self.where, self.name = where, name

    def __call__(self, key: str | int) -> Field:
        """The sub-field `key` (an int indexes a list)."""
        if isinstance(key, int):
            return Field(self.where, f"{self.name}[{key}]")
        return Field(self.where, f"{self.name}.{key}" if self.name else key)

    def error(self, problem: str) -> ValueError:
        return ValueError(f"{self.where}: field {self.name!r} {problem}")

    def of(self, row: Any, key: str, types: type | tuple[type, ...] | None = None) -> Any:
        """row[key], present and (if `types` is given) of one of `types`."""
        at = self(key)
        if not isinstance(row, dict) or key not in row:
            raise at.error("is missing")
        value = row[key]
        if types is not None:
            at.check(value, types)
        return value

    def check(self, value: Any, types: type | tuple[type, ...]) -> Any:
        """`value` if it is one of `types`; bool never passes for int (true is not 1)."""
        types = types if isinstance(types, tuple) else (types,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.error(f"must be {type_names(types)}, got {type(value).__name__}")
        return value


def field_error(where: str, name: str, problem: str) -> ValueError:
    """The error for field `name` at `where`."""
    return Field(where, name).error(problem)


def type_names(types: tuple[type, ...]) -> str:
    """'int or null' for (int, NoneType)."""
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)
