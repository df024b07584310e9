"""One way to turn a pydantic ValidationError into a message people can act on."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

__all__ = ["describe_errors"]


def describe_errors(
    source: str, exc: ValidationError, where: Callable[[tuple[int | str, ...]], str]
) -> str:
    """`source: N problem(s)` and one indented line per error, located by `where`."""
    lines = [f"{source}: {exc.error_count()} problem(s)"]
    for err in exc.errors(include_url=False):
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"  {where(err['loc'])}: {msg}")
    return "\n".join(lines)
