"""Regular expressions on alert labels: RE2, as Alertmanager's (Go's regexp) are.

RE2 matches in time linear in the value, whatever the pattern: a careless
`(dachuan-.*)*` in a route cannot hang the service or `check-config` the way
it backtracks for ever in Python's `re` on a long station id. Its syntax is
Alertmanager's too: no look-arounds, no back-references.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol, cast

import re2

__all__ = ["LabelRegex", "LabelRegexError", "compile_label_regex"]


class LabelRegex(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


class LabelRegexError(ValueError):
    """Not a pattern RE2 takes; the message is RE2's."""


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised (and worded) here, not logged to stderr


@lru_cache(maxsize=4096)
def compile_label_regex(pattern: str) -> LabelRegex:
    try:
        return cast("LabelRegex", re2.compile(pattern, _OPTIONS))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise LabelRegexError(text) from None
