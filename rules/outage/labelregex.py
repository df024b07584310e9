"""Regular expressions on alert labels: RE2, as Alertmanager's (Go's regexp) are.

RE2 matches in time linear in the value, whatever the pattern: a careless
`(dachuan-.*)*` in a route cannot hang the service or `check-config` the way
it backtracks for ever in Python's `re` on a long station id. Its syntax is
Alertmanager's too: no look-arounds, no back-references.

`google-re2` comes with the server install; an edge box (`waystation[edge]`)
imports the CLI without it, so it is loaded on first use.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol, cast

__all__ = ["LabelRegex", "LabelRegexError", "LabelRegexUnavailable", "compile_label_regex"]


class LabelRegex(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


class LabelRegexError(ValueError):
    """Not a pattern RE2 takes; the message is RE2's."""


class LabelRegexUnavailable(LabelRegexError):
    """google-re2 is not installed (an edge box)."""


@lru_cache(maxsize=1)
def _re2() -> tuple[Any, Any]:
    """The module and its options (errors raised here, not logged to stderr by RE2)."""
    try:
        import re2  # noqa: PLC0415 - the server extra's; an edge box imports this module too
    except ImportError:
        raise LabelRegexUnavailable from None
    options = re2.Options()
    options.log_errors = False
    return re2, options


@lru_cache(maxsize=4096)
def compile_label_regex(pattern: str) -> LabelRegex:
    re2, options = _re2()
    try:
        return cast("LabelRegex", re2.compile(pattern, options))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise LabelRegexError(text) from None
