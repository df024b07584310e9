"""One language per reader: nothing a person reads in `zh` carries English, nor `en` Chinese.

A scan, not a spot check: every rule's notice in every state with each
detail the detector gives, every finding code with figures as the
allocation gives them, every cell of the workbook of a month with seven
kinds of finding, the report's printed summary and the silences' output.
Names (stations, parties, devices), ids, finding codes in their own column
and what a device or server said itself (quoted 「…」 or "…") are set aside.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from rich.console import Console

from rules.allocation.command import print_summary
from rules.allocation.export import write_xlsx
from rules.allocation.findings import Code, Finding
from rules.allocation.labels import LABELS, PARTY_TYPES, PERIODS, UTILITIES
from rules.allocation.tariff import Tariff
from rules.allocation.wording import LABELS as FINDING_LABELS
from rules.allocation.wording import SENTENCES, finding_text
from rules.outage.alerts import Alert, AlertState, Notice
from rules.outage.details import DETAIL_TEXT
from rules.outage.detect import SERVICE_GROUP, Rule
from rules.outage.messages import Renderer
from rules.outage.silences import add_silence, list_silences
from rules.servicelevel.command import print_scorecard
from rules.servicelevel.definitions import Service
from rules.servicelevel.monthly import ServiceReport
from rules.servicelevel.scorecard import ALL_STATIONS, ServiceLevel
from tests.allocation_helpers import PARTIES, own_tariffs
from tests.export_helpers import sample_registry, sample_report
from waystation.language import LANGUAGES, Language
from waystation.registry import Registry, parse_registry

HAN = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
QUOTED = {"zh": re.compile(r"「[^」]*」"), "en": re.compile(r'"[^"]*"')}
T0 = 1_790_000_000_000  # 2026-09-21 14:13 UTC, an instant like any

# What the detector puts in an alert's detail, rule by rule (and what releases before wrote).
DETAILS: dict[Rule, list[str]] = {
    Rule.STATION_DOWN: ["devices_down:6/6", "agent_offline", "agents_offline:2",
                        "6/6 devices down", "its agent is offline"],
    Rule.AGENT_OFFLINE: ["offline", "silent"],
    Rule.DEVICE_SILENT: ["offline", "silent"],
    Rule.DISPENSER_COLD: ["temp_c:41.5", "", "41.5 °C"],
    Rule.DEVICE_FAULT: ["E12", "fault", "dry boil 干烧"],
    Rule.METER_STUCK: ["loads_kwh:3.25", "loads +3.25 kWh"],
    Rule.DOOR_SILENT: [""],
    Rule.MONITORING_LOST: ["mqtt://127.0.0.1:1883", "no_probe:mqtt://127.0.0.1:1883",
                           "not_subscribed:mqtt://127.0.0.1:1883"],
    Rule.CHANNEL_FAILING: ["http://127.0.0.1:9/hook answered 500"],
}  # fmt: skip
# A finding's figures as the allocation gives them (each code's own arguments).
FIGURES: dict[Code, dict[str, str | int | float]] = {
    Code.COUNTER_RESET: {"before": 5259.91, "after": 0.746},
    Code.REGISTER_ROLLOVER: {"before": 99999.5, "after": 1.25},
    Code.METER_REPLACED: {"before": 5259.91, "after": 12.0, "delta": 48.2, "unit": "kWh"},
    Code.SPIKE_REJECTED: {"value": 99999.0, "unit": "m³"},
    Code.GAP_BRIDGED: {"since_at": T0, "hours": 19.0, "delta": 38.0, "unit": "kWh"},
    Code.EXTRAPOLATED_END: {"since_at": T0, "delta": 86.0, "per_day": 48.0, "unit": "kWh"},
    Code.STARTED_IN_MONTH: {"first_at": T0},
    Code.NO_DATA: {},
    Code.NO_MAIN_METER: {"utility": "water"},
    Code.MAIN_METER_SILENT: {"utility": "electricity", "billed": 558.0, "unit": "kWh"},
    Code.RESIDUAL_NEGATIVE: {"utility": "electricity", "excess": 334.8, "unit": "kWh"},
    Code.NO_VISITS: {},
    Code.METER_TOU: {},
    Code.METER_TOU_MISMATCH: {"gap": 2.5, "unit": "kWh"},
}


def names_of(registry: Registry) -> set[str]:
    """What a reader sees as it was registered: ids and names of stations, devices, parties."""
    out = set(registry.stations) | {s.name for s in registry.stations.values()}
    out |= {d for s in registry.stations.values() for d in s.devices}
    return out | set(PARTIES) | {p["name"] for p in PARTIES.values()}


def foreign(text: str, language: Language, names: Iterable[str]) -> list[str]:
    """The words of the other language left in `text` once names and quotes are set aside."""
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ")
    text = QUOTED[language].sub(" ", text)
    return HAN.findall(text) if language == "en" else LATIN_WORD.findall(text)


def assert_one_language(texts: Iterable[str], language: Language, names: Iterable[str]) -> int:
    names = set(names)
    seen = 0
    for text in texts:
        seen += 1
        assert not foreign(text, language, names), f"{language}: {text!r}"
    return seen


def test_the_scanner_catches_the_other_language() -> None:
    """The scan itself can fail: the mixed texts the issue quotes are caught."""
    assert foreign("驿站整体离线 (its agent is offline)", "zh", set()) == ["its", "agent", "is",
                                                                      "offline"]  # fmt: skip
    assert foreign("counter reset 计数器清零", "en", set()) == list("计数器清零")
    assert foreign("故障码「E12」", "zh", set()) == []
    assert foreign("达川·骑手家园 1 号 down", "en", {"达川·骑手家园 1 号"}) == []


def _alerts(station: str, device: str) -> list[Alert]:
    out = []
    for rule, details in DETAILS.items():
        where = SERVICE_GROUP if rule in {Rule.MONITORING_LOST, Rule.CHANNEL_FAILING} else station
        dev = None if rule is Rule.STATION_DOWN else device
        if rule is Rule.CHANNEL_FAILING:
            dev = "webhook:ops"
        for i, detail in enumerate(details):
            since = T0 + i * 60_000
            out.append(Alert(f"{rule}:{where}:{dev}", rule, where, dev, since,
                             AlertState.FIRING, detail, fired_ms=since))  # fmt: skip
    return out


def _resolved(a: Alert) -> Alert:
    return Alert(a.key, a.rule, a.station, a.device, a.since_ms, AlertState.RESOLVED, a.detail,
                 a.fired_ms, a.since_ms + 3_600_000, notified_on={"root"})  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_notice_in_every_state_speaks_one_language(language: Language) -> None:
    registry = sample_registry()
    renderer = Renderer(registry, language)
    names = names_of(registry) | {"webhook:ops", "127.0.0.1"}
    alerts = _alerts("a", "a-disp")
    assert {a.rule for a in alerts} == set(Rule)  # a new rule needs its samples here
    texts = []
    for a in alerts:
        r = _resolved(a)
        for notice in (Notice(a.station, (a,), ()), Notice(a.station, (a,), (), repeat=True),
                       Notice(a.station, (), (r,)), Notice(a.station, (a,), (r,))):  # fmt: skip
            texts += [*renderer.text([notice]), *renderer.markdown([notice])]
    several = [Notice("a", tuple(alerts[:3]), ()), Notice("b", (), (_resolved(alerts[4]),))]
    texts += [*renderer.text(several), *renderer.markdown(several)]
    assert assert_one_language(texts, language, names) > 4 * len(alerts)
    # Times in the station's zone with its offset: 2026-09-21 14:13 UTC is 22:13 +08:00.
    assert "09-21 22:13 +08:00" in renderer.text([Notice("a", (alerts[0],), ())])[1]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_message_cut_to_a_robots_size_says_so_in_one_language(language: Language) -> None:
    registry = sample_registry()
    renderer = Renderer(registry, language)
    alerts = _alerts("a", "a-disp")
    long = Notice("a", (), tuple(_resolved(a) for a in alerts * 5))
    texts = [renderer.text([long], max_bytes=600)[1], renderer.markdown([long], max_bytes=600)[1]]
    assert all(len(t.encode()) <= 600 for t in texts)
    assert all(("未列出" if language == "zh" else "not shown") in t for t in texts)
    assert assert_one_language(texts, language, names_of(registry) | {"127.0.0.1"}) == 2


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_detail_token_and_finding_code_is_worded_in_both(language: Language) -> None:
    assert set(DETAIL_TEXT[language]) == set(DETAIL_TEXT["en"])
    assert set(FINDING_LABELS[language]) == set(SENTENCES[language]) == set(Code)
    assert set(FIGURES) == set(Code)  # a new code needs its figures here
    tz = ZoneInfo("Asia/Shanghai")
    texts = []
    for code, figures in FIGURES.items():
        finding = Finding(code, "a", "a-meter", T0, None, tuple(sorted(figures.items())))
        texts += [finding_text(finding, language, tz), FINDING_LABELS[language][code]]
    assert assert_one_language(texts, language, {"a-meter"}) == 2 * len(Code)
    if language == "zh":
        reset = Finding(Code.COUNTER_RESET, "a", "m", T0, None, (("after", 0.746),
                                                                  ("before", 5259.91)))  # fmt: skip
        assert finding_text(reset, "zh", tz) == "读数由 5259.91 降为 0.746：计数器清零，从零起算"
        gap = Finding(
            Code.GAP_BRIDGED, "a", "m", T0, None, tuple(FIGURES[Code.GAP_BRIDGED].items())
        )
        assert "自 2026-09-21 22:13 +08:00 起 19.0 小时无读数" in finding_text(gap, "zh", tz)


@pytest.fixture(scope="module")
def tariff(tmp_path_factory: pytest.TempPathFactory) -> Tariff:
    [own] = own_tariffs(tmp_path_factory.mktemp("tariffs")).values()
    return own


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_cell_of_the_workbook_speaks_one_language(
    language: Language, tariff: Tariff, tmp_path: Path
) -> None:
    report = sample_report(tariff, language)
    assert len({f.code for s in report.stations for f in s.findings}) >= 7
    path = write_xlsx(report, tmp_path / "m.xlsx")
    book = openpyxl.load_workbook(path)
    names = names_of(sample_registry())
    texts = list(book.sheetnames)
    for ws in book.worksheets:
        code_column = None
        for row in ws.iter_rows(values_only=True):
            if LABELS[language]["code"] in row:
                code_column = row.index(LABELS[language]["code"])
            texts += [
                str(v)
                for i, v in enumerate(row)
                if isinstance(v, str) and not (i == code_column and v in set(Code))
            ]
    assert assert_one_language(texts, language, names) > 200
    every_label = [*LABELS[language].values(), *UTILITIES[language].values(),
                   *PERIODS[language].values(), *PARTY_TYPES[language].values()]  # fmt: skip
    assert_one_language((re.sub(r"\{\w+\}", " ", t) for t in every_label), language, set())


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_printed_summary_and_the_silences_speak_one_language(
    language: Language, tariff: Tariff, tmp_path: Path
) -> None:
    report = sample_report(tariff, language)
    registry = sample_registry().model_copy(update={"language": language})
    out = io.StringIO()
    print_summary(Console(file=out, width=200), report, registry)
    names = names_of(registry)
    assert assert_one_language(out.getvalue().splitlines(), language, names) > 10
    state = tmp_path / "state.db"
    said = [add_silence(state, "a", "2h", registry=registry, create=True)]
    said += list_silences(state, registry)
    assert_one_language(said, language, names)
    assert parse_registry({"version": 1, "language": language, "stations": {
        "a": {"name": "a", "model": "industry_managed", "devices": {"g": {"kind": "gateway"}}}},
    }).language == language  # fmt: skip


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_printed_scorecard_speaks_one_language(language: Language) -> None:
    """`report` prints each operator's availability: title, headers and rows in one language."""
    month = date(2026, 10, 1)
    rows = [
        ServiceLevel(month, ALL_STATIONS, "xiaoge", service, 44_640 * 60_000, 90 * 60_000, 2,
                     60 * 60_000)
        for service in Service
    ]  # fmt: skip
    out = io.StringIO()
    print_scorecard(Console(file=out, width=200), ServiceReport(month, [], rows), language)
    text = out.getvalue()
    assert "99.80" in text  # 100 x (1 - 90 / 44,640)
    assert assert_one_language(text.splitlines(), language, {"xiaoge"}) >= 5
