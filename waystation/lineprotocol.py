"""InfluxDB line protocol, written by hand because it is on the hot path.

influxdb-client's `Point` costs about 14 µs a point; this encoder is a few
`str.translate` calls and one f-string (see `bench/bench_lineprotocol.py`).
Escaping follows the line-protocol reference: measurement names escape comma
and space; tag keys, tag values and field keys escape comma, equals and space;
string field values escape backslash and double quote. Newlines cannot be
escaped in line protocol at all, so they are refused, as are NaN and infinity.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

__all__ = ["FieldValue", "LineProtocolError", "encode_line", "field_type"]

FieldValue = bool | int | float | str


class LineProtocolError(ValueError):
    """A value that cannot be written as line protocol."""


_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING = str.maketrans({"\\": "\\\\", '"': r"\""})


def _checked(text: str, what: str) -> str:
    if "\n" in text or "\r" in text:
        raise LineProtocolError(f"{what} {text!r} contains a line break")
    if not text:
        raise LineProtocolError(f"{what} is empty")
    # A trailing backslash would escape the separator that follows it.
    if text.endswith("\\"):
        raise LineProtocolError(f"{what} {text!r} ends with a backslash")
    return text


def _field(value: FieldValue, key: str) -> str:
    # bool before int: bool is a subclass of int.
    if value.__class__ is float:
        if value - value != 0:  # NaN or ±inf, without a call to math.isfinite
            raise LineProtocolError(f"field {key!r} is {value}, which InfluxDB cannot store")
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return _field(float(value), key)
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise LineProtocolError(f"string field {key!r} contains a line break")
        return f'"{value.translate(_STRING)}"'
    raise LineProtocolError(f"field {key!r} has unsupported type {type(value).__name__}")


# Measurements, tag sets and field keys come from a small, bounded vocabulary
# (SPEC §5 keeps tag cardinality bounded), so their escaped forms are cached;
# only field values are encoded afresh for every point.
_CACHE_SIZE = 65536


@lru_cache(maxsize=_CACHE_SIZE)
def _escaped_measurement(measurement: str) -> str:
    return _checked(measurement, "measurement").translate(_MEASUREMENT)


@lru_cache(maxsize=_CACHE_SIZE)
def _escaped_key(key: str) -> str:
    return _checked(key, "field key").translate(_KEY)


@lru_cache(maxsize=_CACHE_SIZE)
def _escaped_tags(tags: tuple[tuple[str, str], ...]) -> str:
    return "".join(
        f",{_checked(k, 'tag key').translate(_KEY)}={_checked(v, 'tag value').translate(_KEY)}"
        for k, v in sorted(tags)
    )


def encode_line(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    time_ms: int,
) -> str:
    """One point as a line (no trailing newline), timestamp in milliseconds.

    Tags are sorted by key, as InfluxDB recommends for write performance.
    At least one field is required; None values must be left out by the caller.
    """
    if not fields:
        raise LineProtocolError(f"point {measurement!r} has no fields")
    field_part = ",".join([f"{_escaped_key(k)}={_field(v, k)}" for k, v in fields.items()])
    return (
        f"{_escaped_measurement(measurement)}{_escaped_tags(tuple(tags.items()))} "
        f"{field_part} {time_ms}"
    )


# What a backslash escapes where (line-protocol reference); elsewhere it is itself.
_MEASUREMENT_ESC = ", "
_KEY_ESC = ",= "
_STRING_ESC = '"\\'


def _unescaped_index(text: str, chars: str, escapable: str, start: int = 0) -> int:
    """Index of the first of `chars` not escaped by a backslash (len(text) if none)."""
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] and text[i + 1] in escapable:
            i += 2
            continue
        if c in chars:
            return i
        i += 1
    return len(text)


def _unescape(text: str, escapable: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 2] and text[i + 1] in escapable:
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out)


def field_type(line: str, measurement: str, key: str) -> str | None:
    """The InfluxDB type (float, integer, unsigned, string, boolean) of field `key` in `line`.

    None when the line is of another measurement or has no such field. Only
    used when a write was refused, so a plain scanner is fast enough.
    """
    end = _unescaped_index(line, ", ", _MEASUREMENT_ESC)
    if _unescape(line[:end], _MEASUREMENT_ESC) != measurement:
        return None
    i = _unescaped_index(line, " ", _KEY_ESC, end) + 1  # past the tag set
    while i < len(line):
        eq = _unescaped_index(line, "=", _KEY_ESC, i)
        name = _unescape(line[i:eq], _KEY_ESC)
        j = eq + 1
        if line[j : j + 1] == '"':  # a string: up to the closing unescaped quote
            j = _unescaped_index(line, '"', _STRING_ESC, j + 1) + 1
            kind = "string"
        else:
            stop = _unescaped_index(line, ", ", "", j)
            value, j = line[j:stop], stop
            kind = _value_type(value)
        if name == key:
            return kind
        if line[j : j + 1] != ",":
            return None  # the timestamp follows: no such field
        i = j + 1
    return None


def _value_type(value: str) -> str:
    if value in ("t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"):
        return "boolean"
    if value.endswith("i"):
        return "integer"
    if value.endswith("u"):
        return "unsigned"
    return "float"
