"""Validation of a parsed document into a pydantic model, with every error located and explained.

`validate` turns the data into a model and every pydantic error into a
`Problem` that names the line and column, the key's path in words, what was
wrong (in Chinese and English) and how to fix it: the field it may have
meant, the values it may take, a full-width character on the line.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from waystation.configerror import ConfigError, Invalid, Problem, Text
from waystation.configfile import Document, KeyPath
from waystation.yamlhints import full_width_at, full_width_fix

__all__ = ["validate", "validation_problems"]

M = TypeVar("M", bound=BaseModel)


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
    glued = _glued(key)
    return (
        Text(f"unknown key {key!r}", f"未知的键 {key!r}"),
        _join(glued, _suggest(key, known), allowed),
        "unknown_key",
    )


def _glued(key: Any) -> Text | None:
    """`kind:door_counter` is one key to YAML: the space after the colon is missing."""
    name, colon, value = str(key).partition(":")
    if not colon or not name or not value or " " in name:
        return None
    return Text(
        f"put a space after the colon: `{name}: {value}`",
        f"冒号后面要加一个空格：`{name}: {value}`",
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
        found = full_width_at(text)
        if found:
            fix = full_width_fix(found[1])
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
