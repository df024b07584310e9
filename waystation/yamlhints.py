"""Hints for the mistakes people make in YAML: a tab in the indentation, and a full-width
colon, comma or space typed with a Chinese input method (the three in FULL_WIDTH).

`syntax_problem` locates what PyYAML could not parse, `full_width_at` finds a
full-width character where YAML wanted its ASCII twin (for validation's hints too).
"""

from __future__ import annotations

import yaml

from waystation.configerror import Problem, Text

__all__ = ["FULL_WIDTH", "full_width_at", "full_width_fix", "syntax_problem"]

FULL_WIDTH = {"：": ":", "，": ",", "　": " "}
# PyYAML may notice a mistake a line or two after it: hints look back this far.
LOOK_BACK = 2


def full_width_at(text: str) -> tuple[int, str] | None:
    """A full-width colon, comma or space where YAML wanted its ASCII twin: (column, char).

    Only where it is a mistake: a colon before the line's first `: `, a comma
    inside `{…}` or `[…]`, a space in the indentation, right after a colon or
    after a value (at the line's end, or before `,` `}` `]` in a flow).
    Chinese text in a value (a name with a full-width colon) keeps its punctuation.
    """
    quote: str | None = None
    flow = 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return None
        elif ch in "{[":
            flow += 1
        elif ch in "}]":
            flow -= 1
        elif ch in FULL_WIDTH and _mistaken(text, i, ch, flow):
            return i + 1, ch
    return None


def _mistaken(text: str, i: int, ch: str, flow: int) -> bool:
    before = text[:i]
    if ch == "：":
        return ": " not in before or flow > 0
    if ch == "，":
        return flow > 0
    after = text[i + 1 :].lstrip(" 　")
    trailing = not after or after.startswith("#") or (flow > 0 and after[0] in ",}]")
    return trailing or not before.strip(" 　") or before.rstrip(" 　").endswith(":")


_FULL_WIDTH_FIX = {
    "：": Text(
        "this line has a full-width colon '：' (U+FF1A) from a Chinese input method: YAML needs "
        "the ASCII colon ':' followed by a space",
        "这一行有中文输入法打出的全角冒号“：”：YAML 要用半角冒号“:”，后面再加一个空格",
    ),
    "，": Text(
        "this line has a full-width comma '，' (U+FF0C) from a Chinese input method: YAML needs "
        "the ASCII comma ','",
        "这一行有中文输入法打出的全角逗号“，”：YAML 要用半角逗号“,”",
    ),
    "　": Text(
        "this line has a full-width space '　' (U+3000) from a Chinese input method: YAML needs "
        "ordinary (half-width) spaces",
        "这一行有中文输入法打出的全角空格“　”：YAML 要用半角空格",
    ),
}


def full_width_fix(ch: str) -> Text:
    return _FULL_WIDTH_FIX[ch]


_TAB_FIX = Text(
    "YAML indents with spaces only: replace the tab(s) on this line with spaces",
    "YAML 只能用空格缩进：把这一行的制表符（Tab 键）换成空格",
)


def syntax_problem(file: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    """What PyYAML could not parse, where the mistake most likely is, and how to fix it."""
    lines = text.splitlines()
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    problem = str(exc.problem or exc.context or "syntax error")
    fix: Text | None = Text(
        "check the indentation and the `key: value` form on this line and the one above",
        "检查这一行和上一行的缩进，以及“键: 值”的写法（冒号后要有空格）",
    )
    # The line a mistake is on may come before the line PyYAML noticed it: look back.
    last = line or 1
    first = min(exc.context_mark.line + 1 if exc.context_mark else last, last - LOOK_BACK)
    for n in range(max(first, 1), last + 1):
        text = lines[n - 1] if 0 < n <= len(lines) else ""
        if "\t" in text and ("'\\t'" in problem or text.lstrip(" ").startswith("\t")):
            line, column, fix = n, text.index("\t") + 1, _TAB_FIX
            break
        found = full_width_at(text)
        if found:
            line, (column, ch) = n, found
            fix = full_width_fix(ch)
            break
    if "'\\t'" in problem and fix is not _TAB_FIX:
        fix = _TAB_FIX
    what = Text(f"not valid YAML: {problem}", f"YAML 格式错误：{_YAML_ZH.get(problem, problem)}")
    return Problem(what, fix, file=file, line=line, column=column, code="yaml_syntax")


_YAML_ZH = {
    "found character '\\t' that cannot start any token": "这里有制表符（Tab），YAML 不接受",
    "could not find expected ':'": "找不到应有的冒号“:”",
    "mapping values are not allowed here": "这里不能写“键: 值”（多半是缩进不对，或冒号后少了空格）",
    "expected <block end>, but found '<block mapping start>'": "缩进不一致",
    "did not find expected key": "缩进不一致，找不到应有的键",
}
