"""The one YAML loader for every configuration file: documents that know where each key stands.

`load_document` reads a file as UTF-8 (a BOM is fine), parses it with a safe
loader that refuses a key written twice (PyYAML would silently keep the
last), and remembers where each key and value stands, so a problem names the
line and column and the key's path in words (`path_words`).

A file saved as GBK (or UTF-16) instead of UTF-8 is said so; a tab or a
full-width character that breaks the YAML gets its hint (`yamlhints`).
Validation into models is `waystation.validation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from waystation.configerror import ConfigError, Problem, Text
from waystation.yamlhints import syntax_problem

__all__ = [
    "Document",
    "KeyPath",
    "document_from_data",
    "load_document",
    "parse_text",
    "path_words",
]

KeyPath = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"


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

    @cached_property
    def lines(self) -> list[str]:
        """The file's lines, split once (a problem on each of 12,000 devices asks 12,000 times)."""
        return self.text.splitlines()

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

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
            _save_as_utf8("UTF-16"),
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
            Problem(
                what, _save_as_utf8("GBK"), file=file, line=line, column=column, code="not_utf8"
            )
        ) from None


def _save_as_utf8(encoding: str) -> Text:
    return Text(
        "save the file as UTF-8 (in Notepad: Save As, Encoding: UTF-8; or "
        f"`iconv -f {encoding} -t UTF-8 old.yaml > new.yaml`)",
        "请把文件另存为 UTF-8 编码（记事本：另存为 → 编码选 UTF-8；"
        f"或 `iconv -f {encoding} -t UTF-8 旧.yaml > 新.yaml`）",
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


# libyaml's parser where PyYAML was built with it: five times faster (a 2,000-station
# registry parses in under a second, not four), and its nodes carry the same marks, so
# lines, columns and the duplicate-key check are the same. A file it cannot parse is parsed
# again by PyYAML's own, whose messages and marks the hints (`yamlhints`) know.
_FastLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_STR_TAG = "tag:yaml.org,2002:str"


def _scalar_key(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
        return node.value  # nearly every key: no constructor call
    try:
        key = loader.construct_object(node, deep=True)
        hash(key)
    except (yaml.YAMLError, TypeError):
        return None
    return key


@dataclass
class _Walk:
    loader: yaml.SafeLoader
    doc: Document
    duplicates: list[Problem] = field(default_factory=list)


def _walk(walk: _Walk, node: yaml.Node, path: KeyPath, seen: set[int]) -> None:
    if id(node) in seen:  # an alias already walked on this branch: no cycles
        return
    seen.add(id(node))
    try:
        _walk_children(walk, node, path, seen)
    finally:
        seen.discard(id(node))


def _walk_children(walk: _Walk, node: yaml.Node, path: KeyPath, seen: set[int]) -> None:
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
    try:
        return _parse(text, file, _FastLoader)
    except yaml.YAMLError as exc:
        if _FastLoader is _Loader:
            raise _yaml_error(text, file, exc) from None
    try:
        return _parse(text, file, _Loader)  # the same failure, in PyYAML's words
    except yaml.YAMLError as exc:
        raise _yaml_error(text, file, exc) from None


def _parse(text: str, file: str, loader_class: type[yaml.SafeLoader]) -> Document:
    doc = Document(file, text, None)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            walk = _Walk(loader, doc)
            _walk(walk, node, (), set())
            doc.duplicates = walk.duplicates
            doc.data = loader.construct_document(node)
    finally:
        loader.dispose()
    return doc


def _yaml_error(text: str, file: str, exc: yaml.YAMLError) -> ConfigError:
    if isinstance(exc, yaml.MarkedYAMLError):
        return ConfigError(syntax_problem(file, text, exc))
    what = Text(f"not valid YAML: {exc}", f"YAML 格式错误：{exc}")
    return ConfigError.at(file, what, code="yaml_syntax")


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


# --- key paths in words -----------------------------------------------------------------------

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
