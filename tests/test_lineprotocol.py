"""Line-protocol escaping: exact strings, refusals, and a round trip through real InfluxDB."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waystation.lineprotocol import LineProtocolError, encode_line, field_type
from waystation.store import InfluxStore


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "expected"),
    [
        ("m", {"b": "2", "a": "1"}, {"f": 1.5}, "m,a=1,b=2 f=1.5 7"),
        ("my meas,x", {}, {"f": 1.0}, r"my\ meas\,x f=1.0 7"),
        ("m", {"k e,y=": "v a,l=ue"}, {"f": 1.0}, r"m,k\ e\,y\==v\ a\,l\=ue f=1.0 7"),
        ("m", {}, {"f i,e=ld": 2}, r"m f\ i\,e\=ld=2i 7"),
        ("m", {}, {"s": 'say "hi" \\ bye'}, r'm s="say \"hi\" \\ bye" 7'),
        ("m", {}, {"t": True, "f": False}, "m t=true,f=false 7"),
        ("m", {}, {"big": 1e20, "small": 2.5e-7}, "m big=1e+20,small=2.5e-07 7"),
        ("m", {}, {"n": -3}, "m n=-3i 7"),
        ("m", {"站": "达川·骑手家园"}, {"f": 1.0}, "m,站=达川·骑手家园 f=1.0 7"),
    ],
)
def test_escaping(
    measurement: str, tags: dict[str, str], fields: dict[str, object], expected: str
) -> None:
    assert encode_line(measurement, tags, fields, 7) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "complaint"),
    [
        ("m", {}, {}, "no fields"),
        ("m", {}, {"f": math.nan}, "cannot store"),
        ("m", {}, {"f": math.inf}, "cannot store"),
        ("m", {"a": "x\ny"}, {"f": 1.0}, "line break"),
        ("m", {}, {"s": "x\ny"}, "line break"),
        ("m\n", {}, {"f": 1.0}, "line break"),
        ("m", {"a": ""}, {"f": 1.0}, "empty"),
        ("m", {"a": "ends\\"}, {"f": 1.0}, "backslash"),
        ("m", {}, {"f": None}, "unsupported"),
    ],
)
def test_refusals(
    measurement: str, tags: dict[str, str], fields: dict[str, object], complaint: str
) -> None:
    with pytest.raises(LineProtocolError, match=complaint):
        encode_line(measurement, tags, fields, 7)  # type: ignore[arg-type]


# Printable text without line breaks, and not ending in a backslash (refused above).
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=20
).filter(lambda s: not s.endswith("\\") and s.strip() == s and s)


@pytest.mark.integration
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.tuples(_text, _text), min_size=1, max_size=20, unique_by=lambda t: t[0]))
def test_round_trip_through_influxdb(store: InfluxStore, values: list[tuple[str, str]]) -> None:
    """Whatever tag value and string field we encode, InfluxDB gives back exactly."""
    store.query('DROP SERIES FROM "rt"')
    lines = [
        encode_line("rt", {"tag": tag}, {"text": text, "n": i}, 1_761_955_200_000 + i)
        for i, (tag, text) in enumerate(values)
    ]
    store.write_lines(lines)
    [series] = store.query('SELECT "tag", "text", "n" FROM "rt" ORDER BY time')
    got = [(row[1], row[2]) for row in series.values]
    assert got == values


@given(
    measurement=_text,
    tags=st.dictionaries(_text, _text, max_size=3),
    fields=st.dictionaries(
        _text,
        st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                  _text.filter(lambda s: "\n" not in s)),
        min_size=1,
        max_size=5,
    ),
)  # fmt: skip
def test_field_type_reads_back_what_encode_line_wrote(
    measurement: str, tags: dict[str, str], fields: dict[str, bool | int | float | str]
) -> None:
    """How a refused write's conflicting field is found in our own lines."""
    line = encode_line(measurement, tags, fields, 1)
    names = {bool: "boolean", int: "integer", float: "float", str: "string"}
    for key, value in fields.items():
        assert field_type(line, measurement, key) == names[type(value)]
    assert field_type(line, measurement + "x", next(iter(fields))) is None
    assert field_type(line, measurement, "\x00absent") is None
