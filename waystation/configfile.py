"""The one YAML loader for every configuration file, and validation into pydantic models.

`load_document` reads a file as UTF-8 (a BOM is fine), parses it with a safe
loader that refuses a key written twice (PyYAML would silently keep the
last), and remembers where each key and value stands. `validate` turns the
data into a model and every pydantic error into a `Problem` that names the
line and column, the key's path in words, what was wrong and how to fix it.

The mistakes people make get their own hints: a tab in the indentation, a
full-width colon, comma or space typed with a Chinese input method (the three in FULL_WIDTH),
and a file saved as GBK (or UTF-16) instead of UTF-8.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from waystation.configerror import ConfigError, Invalid, Problem, Text

__all__ = [
    "Document",
    "KeyPath",
    "document_from_data",
    "load_document",
    "path_words",
    "validate",
]

M = TypeVar("M", bound=BaseModel)
KeyPath = tuple[str | int, ...]

FULL_WIDTH = {"：": ":", "，": ",", "　": " "}
_MERGE_TAG = "tag:yaml.org,2002:merge"
# PyYAML may notice a mistake a line or two after it: hints look back this far.
LOOK_BACK = 2


@dataclass
class Document:
    """A parsed file: its data and where each key and value stands (1-based line, column)."""

    file: str
    text: str
    data: Any
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # Keys written twice: reported with whatever else is wrong.
    duplicates: list[Problem] = field(default_factory=list)
    paths: set[KeyPath] = field(default_factory=set)  # every key path the data holds

    def line_text(self, line: int) -> str:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def problem(
        self,
        path: KeyPath,
        what: Text,
        fix: Text | None = None,
        *,
        code: str = "invalid",
        on_key: bool = True,
        **kwargs: Any,
    ) -> Problem:
        """A problem at `path` in this file, located at its key (or its value)."""
        found = _deepest(self, path)
        marks = self.keys if on_key else self.values
        line, column = marks.get(found) or self.keys.get(found) or (None, None)
        return Problem(
            what,
            fix,
            file=self.file,
            line=line,
            column=column,
            where=path_words(path),
            code=code,
            **kwargs,
        )


def _deepest(doc: Document, path: KeyPath) -> KeyPath:
    """The longest prefix of `path` that the file actually holds."""
    for end in range(len(path), 0, -1):
        if path[:end] in doc.paths:
            return path[:end]
    return ()


# --- reading -------------------------------------------------------------------------------------


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    return line, offset - (before.rfind(b"\n") + 1) + 1


def _decode(raw: bytes, file: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError.at(
            file,
            Text("the file is saved as UTF-16, not UTF-8", "文件是 UTF-16 编码，不是 UTF-8"),
            _SAVE_AS_UTF8,
            code="not_utf8",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(raw, exc.start)
        try:
            raw.decode("gb18030")
            guess = Text(" (it looks like GBK/GB18030)", "（看起来是 GBK/GB18030 编码）")
        except UnicodeDecodeError:
            guess = Text("", "")
        what = Text(
            f"the file is not UTF-8{guess.en}: byte 0x{raw[exc.start]:02x} cannot be read",
            f"文件不是 UTF-8 编码{guess.zh}：无法读取字节 0x{raw[exc.start]:02x}",
        )
        raise ConfigError(
            Problem(what, _SAVE_AS_UTF8, file=file, line=line, column=column, code="not_utf8")
        ) from None


_SAVE_AS_UTF8 = Text(
    "save the file as UTF-8 (in Notepad: Save As, Encoding: UTF-8; or "
    "`iconv -f GBK -t UTF-8 old.yaml > new.yaml`)",
    "请把文件另存为 UTF-8 编码（记事本：另存为 → 编码选 UTF-8；"
    "或 `iconv -f GBK -t UTF-8 旧.yaml > 新.yaml`）",
)


def load_document(path: str | Path, *, missing: Text | None = None) -> Document:
    """Read and parse a YAML file; `missing` says how to name the right one if it is absent."""
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError.at(
            file, Text("no such file", "文件不存在"), missing, code="no_file"
        ) from None
    except IsADirectoryError:
        raise ConfigError.at(
            file, Text("is a directory, not a file", "这是目录，不是文件"), missing, code="no_file"
        ) from None
    except OSError as exc:
        raise ConfigError.at(
            file,
            Text(f"cannot read: {exc.strerror}", f"无法读取：{exc.strerror}"),
            Text("check the path and its permissions", "检查路径和文件权限"),
            code="unreadable",
        ) from None
    return parse_text(_decode(raw, file), file)


# --- parsing ---------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader; the document is composed first and walked for positions."""


def _scalar_key(loader: _Loader, node: yaml.Node) -> Any:
    try:
        key = loader.construct_object(node, deep=True)
        hash(key)
    except (yaml.YAMLError, TypeError):
        return None
    return key


@dataclass
class _Walk:
    loader: _Loader
    doc: Document
    duplicates: list[Problem] = field(default_factory=list)


def _walk(walk: _Walk, node: yaml.Node, path: KeyPath, seen: frozenset[int]) -> None:
    if id(node) in seen:  # an alias already walked on this branch: no cycles
        return
    seen |= {id(node)}
    doc = walk.doc
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = None if key_node.tag == _MERGE_TAG else _scalar_key(walk.loader, key_node)
            if key is None:
                continue
            child = (*path, key)
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key in first:
                # PyYAML keeps the last one: forget where the first one's keys stood.
                walk.duplicates.append(_duplicate(doc, child, first[key], line, column))
                for marks in (doc.keys, doc.values):
                    for stale in [p for p in marks if p[: len(child)] == child]:
                        del marks[stale]
                doc.paths -= {p for p in doc.paths if p[: len(child)] == child}
            first[key] = line
            doc.paths.add(child)
            doc.keys[child] = (line, column)
            doc.values[child] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            _walk(walk, value_node, child, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            mark = item.start_mark
            doc.paths.add((*path, i))
            doc.keys[(*path, i)] = doc.values[(*path, i)] = (mark.line + 1, mark.column + 1)
            _walk(walk, item, (*path, i), seen)


def _duplicate(doc: Document, path: KeyPath, first: int, line: int, column: int) -> Problem:
    key = path[-1]
    return Problem(
        Text(
            f"key {key!r} appears twice (lines {first} and {line})",
            f"键 {key!r} 出现了两次（第 {first} 行和第 {line} 行）",
        ),
        Text(
            "keep one of them: YAML would silently keep only the last",
            "只保留一个：YAML 会悄悄只保留最后一个，前面的设置就丢了",
        ),
        file=doc.file,
        line=line,
        column=column,
        where=path_words(path),
        code="duplicate_key",
    )


def parse_text(text: str, file: str) -> Document:
    doc = Document(file, text, None)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            walk = _Walk(loader, doc)
            _walk(walk, node, (), frozenset())
            doc.duplicates = walk.duplicates
            doc.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_syntax_problem(doc, exc)) from None
    except yaml.YAMLError as exc:
        what = Text(f"not valid YAML: {exc}", f"YAML 格式错误：{exc}")
        raise ConfigError.at(file, what, code="yaml_syntax") from None
    finally:
        loader.dispose()
    return doc


def document_from_data(data: Any, file: str) -> Document:
    """A document for data that did not come from a file (tests, the built-in defaults)."""
    doc = Document(file, "", data)
    stack: list[tuple[KeyPath, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        items = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, list)
            else ()
        )
        for key, child in items:
            doc.paths.add((*path, key))
            stack.append(((*path, key), child))
    return doc


# --- hints ---------------------------------------------------------------------------------------


def _full_width_at(text: str) -> tuple[int, str] | None:
    """A full-width colon, comma or space where YAML wanted its ASCII twin: (column, char).

    Only where it is a mistake: a colon before the line's first `: `, a comma
    inside `{…}` or `[…]`, a space in the indentation or right after a colon.
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
    return not before.strip(" 　") or before.rstrip(" 　").endswith(":")


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


def _full_width_fix(ch: str) -> Text:
    return _FULL_WIDTH_FIX[ch]


_TAB_FIX = Text(
    "YAML indents with spaces only: replace the tab(s) on this line with spaces",
    "YAML 只能用空格缩进：把这一行的制表符（Tab 键）换成空格",
)


def _syntax_problem(doc: Document, exc: yaml.MarkedYAMLError) -> Problem:
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
        text = doc.line_text(n)
        if "\t" in text and ("'\\t'" in problem or text.lstrip(" ").startswith("\t")):
            line, column, fix = n, text.index("\t") + 1, _TAB_FIX
            break
        found = _full_width_at(text)
        if found:
            line, (column, ch) = n, found
            fix = _full_width_fix(ch)
            break
    if "'\\t'" in problem and fix is not _TAB_FIX:
        fix = _TAB_FIX
    what = Text(f"not valid YAML: {problem}", f"YAML 格式错误：{_YAML_ZH.get(problem, problem)}")
    return Problem(what, fix, file=doc.file, line=line, column=column, code="yaml_syntax")


_YAML_ZH = {
    "found character '\\t' that cannot start any token": "这里有制表符（Tab），YAML 不接受",
    "could not find expected ':'": "找不到应有的冒号“:”",
    "mapping values are not allowed here": "这里不能写“键: 值”（多半是缩进不对，或冒号后少了空格）",
    "expected <block end>, but found '<block mapping start>'": "缩进不一致",
    "did not find expected key": "缩进不一致，找不到应有的键",
}


# --- validation ----------------------------------------------------------------------------------

_NAMED = {"stations": "station", "devices": "device", "parties": "party", "policies": "policy"}
_LISTED = {"channels": "channel", "versions": "version"}


def path_words(path: KeyPath) -> str:
    """`(stations, st-a, devices, a-d, interval)` → `station 'st-a', device 'a-d': interval`."""
    words: list[str] = []
    rest = list(path)
    while len(rest) >= 2 and isinstance(rest[0], str):
        head, key = rest[0], rest[1]
        if head in _NAMED:
            words.append(f"{_NAMED[head]} {key!r}")
        elif head in _LISTED and isinstance(key, int):
            words.append(f"{_LISTED[head]} {key + 1}")
        else:
            break
        rest = rest[2:]
    fields = ".".join(str(p) for p in rest)
    if not words:
        return fields
    return ", ".join(words) + (f": {fields}" if fields else "")


def _doc_path(doc: Document, loc: tuple[int | str, ...], kind: str) -> KeyPath:
    """pydantic's location without its union tags: the path as the file writes it."""
    path: list[str | int] = []
    for i, part in enumerate(loc):
        candidate = (*path, part)
        last = i == len(loc) - 1
        if candidate in doc.paths or (last and kind == "missing"):
            path.append(part)
    return tuple(path)


def _known_fields(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys a mapping at `loc` may hold, following the models' annotations."""
    tp: Any = model
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return None
    tp = _unwrap(tp, None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return None


def _unwrap(tp: Any, tag: str | int | None) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            tagged = [m for m in models if _tag_of(m) == tag]
            if tagged:
                return tagged[0]
            if len(models) == 1:
                return models[0]
            return None
        else:
            return tp


def _tag_of(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("type")
    if info is None or typing.get_origin(info.annotation) is not Literal:
        return None
    return str(typing.get_args(info.annotation)[0])


def _step(tp: Any, part: str | int) -> Any:
    inner = _unwrap(tp, part)
    if inner is None and isinstance(part, str):
        return tp  # a union tag in pydantic's location: stay on the union
    tp = inner
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        info = tp.model_fields.get(str(part))
        return info.annotation if info else (tp if _tag_of(tp) == part else None)
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin in (list, tuple):
        return typing.get_args(tp)[0]
    return None


def _expected(ctx: dict[str, Any]) -> list[str]:
    return re.findall(r"'([^']*)'", str(ctx.get("expected", "")))


def _suggest(word: Any, options: list[str]) -> Text | None:
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return Text(f"did you mean {close[0]!r}?", f"是不是 {close[0]!r}？") if close else None


def _join(*texts: Text | None) -> Text | None:
    present = [t for t in texts if t is not None]
    if not present:
        return None
    en, zh = present[0].en, present[0].zh
    for t in present[1:]:
        en += (" " if en.endswith("?") else "; ") + t.en
        zh += ("" if zh.endswith("？") else "；") + t.zh
    return Text(en, zh)


_TYPE_ZH = {
    "int": ("a whole number", "整数"),
    "float": ("a number", "数字"),
    "bool": ("true or false", "true 或 false"),
    "string": ("text", "文字"),
    "dict": ("a mapping (key: value lines)", "映射（“键: 值”的若干行）"),
    "list": ("a list ([a, b] or lines starting with '- ')", "列表（[a, b] 或以“- ”开头的若干行）"),
    "date": ("a date like 2026-01-01", "日期，如 2026-01-01"),
    "decimal": ("a number", "数字"),
}


def _type_word(kind: str) -> tuple[str, str] | None:
    for prefix, words in _TYPE_ZH.items():
        if kind.startswith((f"{prefix}_", f"{prefix}_from")):
            return words
    return None


Translation = tuple[Text, Text | None, str]  # what, fix, code


def _missing(err: Any, _model: type[BaseModel]) -> Translation:
    key = err["loc"][-1] if err["loc"] else ""
    return (
        Text(f"`{key}` is missing", f"缺少必填项 `{key}`"),
        Text(f"add `{key}: …` here", f"在这里加上 `{key}: …`"),
        "missing",
    )


def _extra(err: Any, model: type[BaseModel]) -> Translation:
    key = err["loc"][-1]
    known = _known_fields(model, err["loc"][:-1]) or []
    listed = ", ".join(known)
    allowed = (
        Text(f"keys allowed here: {listed}", f"这里可用的键：{listed}")
        if known
        else Text("remove it, or correct its spelling", "删除它，或改正拼写")
    )
    return (
        Text(f"unknown key {key!r}", f"未知的键 {key!r}"),
        _join(_suggest(key, known), allowed),
        "unknown_key",
    )


def _one_of(value: Any, options: list[str]) -> Translation:
    shown = ", ".join(options)
    return (
        Text(f"{value!r} is not one of: {shown}", f"{value!r} 不是可选值之一：{shown}"),
        _suggest(value, options) or Text(f"use one of: {shown}", f"请改用其中之一：{shown}"),
        "not_allowed",
    )


def _choice(err: Any, _model: type[BaseModel]) -> Translation:
    return _one_of(err.get("input"), _expected(err.get("ctx") or {}))


def _bad_tag(err: Any, _model: type[BaseModel]) -> Translation:
    ctx = err.get("ctx") or {}
    return _one_of(ctx.get("tag"), _expected({"expected": ctx.get("expected_tags", "")}))


def _no_tag(err: Any, _model: type[BaseModel]) -> Translation:
    key = str((err.get("ctx") or {}).get("discriminator", "type")).strip("'")
    return (
        Text(f"`{key}` is missing", f"缺少 `{key}`"),
        Text(f"add `{key}: …`", f"加上 `{key}: …`"),
        "missing",
    )


def _pattern(err: Any, _model: type[BaseModel]) -> Translation:
    value = err.get("input")
    if "a-z0-9" in str((err.get("ctx") or {}).get("pattern", "")):
        return (
            Text(f"{value!r} is not a valid id", f"{value!r} 不是有效的编号"),
            Text(
                "ids are lower-case letters, digits, '-' and '_', at most 64, starting "
                "with a letter or digit",
                "编号只能用小写字母、数字、“-”和“_”，最长 64 个，以字母或数字开头",
            ),
            "bad_id",
        )
    return _generic(err, _model)


_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _bound(err: Any, _model: type[BaseModel]) -> Translation:
    value = err.get("input")
    op = _BOUNDS[err["type"]]
    bound = next(iter((err.get("ctx") or {}).values()), "")
    return Text(f"{value!r} must be {op} {bound}", f"{value!r} 必须 {op} {bound}"), None, "range"


def _too_short(err: Any, _model: type[BaseModel]) -> Translation:
    n = (err.get("ctx") or {}).get("min_length")
    return (
        Text(f"needs at least {n} item(s)", f"至少需要 {n} 项"),
        None,
        "too_short",
    )


def _generic(err: Any, _model: type[BaseModel]) -> Translation:
    error = (err.get("ctx") or {}).get("error")
    if isinstance(error, Invalid):
        return error.what, error.fix, error.code
    words = _type_word(err["type"])
    value = err.get("input")
    if words:
        return (
            Text(f"{value!r} is not {words[0]}", f"{value!r} 不是{words[1]}"),
            Text(f"write {words[0]} here", f"这里要写{words[1]}"),
            "wrong_type",
        )
    msg = str(err["msg"]).removeprefix("Value error, ")
    return Text(msg, f"取值无效：{msg}"), None, "invalid"


_TRANSLATIONS: dict[str, Callable[[Any, type[BaseModel]], Translation]] = {
    "missing": _missing,
    "extra_forbidden": _extra,
    "enum": _choice,
    "literal_error": _choice,
    "union_tag_invalid": _bad_tag,
    "union_tag_not_found": _no_tag,
    "string_pattern_mismatch": _pattern,
    "too_short": _too_short,
    **dict.fromkeys(_BOUNDS, _bound),
}


def _translate(err: Any, model: type[BaseModel]) -> Translation:
    """(what, fix, code) for one pydantic error, in both languages."""
    return _TRANSLATIONS.get(err["type"], _generic)(err, model)


def _hints(doc: Document, problem: Problem, path: KeyPath) -> Problem:
    """A full-width character or a tab on the problem's line or in its key: say so."""
    texts = [doc.line_text(problem.line)] if problem.line else []
    texts += [str(p) for p in path if isinstance(p, str)]
    for text in texts:
        found = _full_width_at(text)
        if found:
            fix = _full_width_fix(found[1])
            return _with_fix(problem, fix)
    return problem


def _with_fix(problem: Problem, fix: Text) -> Problem:
    return replace(problem, fix=_join(fix, problem.fix))


def validation_problems(
    doc: Document, exc: ValidationError, model: type[BaseModel]
) -> list[Problem]:
    out: list[tuple[KeyPath, Problem]] = []
    seen: set[tuple[KeyPath, str]] = set()
    for err in exc.errors(include_url=False):
        error = (err.get("ctx") or {}).get("error")
        if err["type"] == "value_error" and isinstance(error, Invalid) and error.problems:
            base = _doc_path(doc, err["loc"], err["type"])
            for sub_path, sub in error.problems:
                path = (*base, *sub_path)
                problem = doc.problem(path, sub.what, sub.fix, code=sub.code)
                out.append((path, _hints(doc, problem, path)))
            continue
        path = _doc_path(doc, err["loc"], err["type"])
        tag = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
        if err["type"] == "union_tag_invalid" and (*path, tag) in doc.paths:
            path = (*path, tag)  # point at `type: pager`, not at the channel
        what, fix, code = _translate(err, model)
        if (path, what.en) in seen:
            continue  # a union's members saying the same thing
        seen.add((path, what.en))
        on_key = err["type"] in ("missing", "extra_forbidden") or err["loc"][-1:] == ("[key]",)
        problem = doc.problem(path, what, fix, code=code, on_key=on_key)
        out.append((path, _hints(doc, problem, path)))
    return _specific(out)


def _specific(found: list[tuple[KeyPath, Problem]]) -> list[Problem]:
    """A union's members each complain; "not text" goes when another says more."""

    def covered(path: KeyPath, problem: Problem) -> bool:
        return problem.code == "wrong_type" and any(
            other is not problem and other.code != "wrong_type" and other_path[: len(path)] == path
            for other_path, other in found
        )

    kept = [p for path, p in found if not covered(path, p)]
    return sorted(kept, key=lambda p: (p.line or 0, p.column or 0))


def validate(
    model: type[M],
    doc: Document,
    *,
    error: type[ConfigError] = ConfigError,
    prepare: Callable[[Any], Any] | None = None,
) -> M:
    """The document's data as `model`, or `error` with every problem located."""
    data = doc.data
    if data is None:
        raise error(
            doc.problem(
                (),
                Text("the file is empty", "文件是空的"),
                Text(
                    "see the sample this command prints for what goes in it",
                    "可以参考命令打印的示例文件",
                ),
                code="empty",
            )
        )
    if not isinstance(data, dict):
        raise error(
            doc.problem(
                (),
                Text(
                    "expected `key: value` lines at the top of the file",
                    "文件顶层应是“键: 值”的若干行",
                ),
                None,
                code="not_a_mapping",
            )
        )
    if prepare is not None:
        data = prepare(data)
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        raise error([*doc.duplicates, *validation_problems(doc, exc, model)]) from None
    if doc.duplicates:
        raise error(doc.duplicates)
    return result
