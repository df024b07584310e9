"""The outage rules on an explicit clock: which conditions hold, and since when."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rules.outage.alerts import Alert, AlertBook, AlertState
from rules.outage.config import Thresholds
from rules.outage.detect import Condition, Rule, detect
from rules.outage.observations import Observations
from rules.outage.restore import restore_beliefs
from tests.helpers import station_data
from waystation.registry import Registry, parse_registry

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = int(datetime(2026, 11, 24, 12, tzinfo=SHANGHAI).timestamp() * 1000)
MIN = 60_000
TH = Thresholds()


def registry(opening_hours: str | None = "07:00-22:00") -> Registry:
    data = station_data("s")
    data["s"]["opening_hours"] = opening_hours  # type: ignore[index]
    return parse_registry({"version": 1, "stations": data})


def observe(reg: Registry, at: int) -> Observations:
    return Observations.from_registry(reg, TH.silent_intervals, TH.dispenser_min_temp_c, at)


def feed_all(obs: Observations, at: int, but: str = "") -> None:
    """Every device (but one) reports at `at`, with nothing the rules would notice."""
    for device in obs.devices:
        if device != but:
            obs.reading(device, at, {})


def rules(conds: dict[str, Condition]) -> dict[str, tuple[Rule, bool]]:
    return {c.device or "*": (c.rule, c.inhibited) for c in conds.values()}


def test_silent_device_since_its_deadline() -> None:
    reg = registry()
    obs = observe(reg, NOON)
    for device in obs.devices:
        if device != "s-door":
            obs.reading(device, NOON + 10 * MIN, {})
    # Default interval 60 s, three intervals: the door counter is silent from 12:03.
    conds = detect(obs, reg, TH, NOON + 10 * MIN)
    [c] = conds.values()
    assert (c.rule, c.device, c.since_ms, c.inhibited) == (
        Rule.DEVICE_SILENT, "s-door", NOON + 3 * MIN, False,
    )  # fmt: skip
    assert c.key == "device_silent:s:s-door"


def test_agent_will_is_station_down_at_once_and_inhibits_the_rest() -> None:
    reg = registry()
    obs = observe(reg, NOON)
    feed_all(obs, NOON)
    obs.status("s-gw", online=False, now_ms=NOON + 1000, probe=0)
    assert detect(obs, reg, TH, NOON + 1000) == {}  # the broker not proven alive since
    obs.probe_back = 0  # the rules' probe sent after the will came back: it counts
    conds = detect(obs, reg, TH, NOON + 1000)
    assert rules(conds) == {
        "*": (Rule.STATION_DOWN, False),
        "s-gw": (Rule.AGENT_OFFLINE, True),
    }
    # Its devices fall silent later: still one station alert, the rest inhibited.
    later = detect(obs, reg, TH, NOON + 10 * MIN)
    assert sum(1 for c in later.values() if not c.inhibited) == 1
    obs.status("s-gw", online=True, now_ms=NOON + 11 * MIN)
    feed_all(obs, NOON + 11 * MIN)
    assert detect(obs, reg, TH, NOON + 11 * MIN) == {}


def test_replayed_old_readings_do_not_make_a_device_alive() -> None:
    reg = registry()
    obs = observe(reg, NOON)
    feed_all(obs, NOON + 10 * MIN)
    obs.reading("s-door", NOON, {"in_total": 1, "out_total": 1})  # a replay, older
    assert obs.devices["s-door"].last_seen_ms == NOON + 10 * MIN


def test_dispenser_cold_after_its_time_only_while_open() -> None:
    reg = registry()
    obs = observe(reg, NOON)
    for minute in range(25):
        feed_all(obs, NOON + minute * MIN, but="s-disp")
        obs.reading("s-disp", NOON + minute * MIN, {"temp_c": 40.0, "heating": True})
    conds = detect(obs, reg, TH, NOON + 24 * MIN)
    [cold] = [c for c in conds.values() if c.rule is Rule.DISPENSER_COLD]
    assert cold.since_ms == NOON + 20 * MIN  # cold from 12:00, for 20 minutes
    assert cold.detail == "temp_c:40.0"
    obs.reading("s-disp", NOON + 25 * MIN, {"temp_c": 95.0, "heating": False})
    assert Rule.DISPENSER_COLD not in {
        c.rule for c in detect(obs, reg, TH, NOON + 25 * MIN).values()
    }
    # At 23:00 the station is closed: a cold dispenser is no alert.
    night = NOON + 11 * 60 * MIN
    obs2 = observe(reg, night - 30 * MIN)
    for minute in range(30):
        feed_all(obs2, night - 30 * MIN + minute * MIN, but="s-disp")
        obs2.reading("s-disp", night - 30 * MIN + minute * MIN, {"temp_c": 20.0})
    assert detect(obs2, reg, TH, night - MIN) == {}


def test_fault_codes_from_dispensers_lockers_and_events() -> None:
    reg = registry()
    obs = observe(reg, NOON)
    feed_all(obs, NOON)
    obs.reading("s-disp", NOON, {"temp_c": 95.0, "fault": "E3"})
    obs.reading("s-locker", NOON, {"fault_slots": 2})
    obs.event("s-meter", "fault", {"code": "phase_loss"})
    conds = detect(obs, reg, TH, NOON)
    assert {c.device: c.detail for c in conds.values() if c.rule is Rule.DEVICE_FAULT} == {
        "s-disp": "E3",
        "s-locker": "2 slot(s) faulty",
        "s-meter": "phase_loss",
    }
    obs.event("s-meter", "fault_cleared", {})
    obs.reading("s-locker", NOON + MIN, {"fault_slots": 0})
    assert {c.device for c in detect(obs, reg, TH, NOON + MIN).values()} == {"s-disp"}


def test_main_meter_stuck_while_the_loads_draw() -> None:
    reg = registry()
    obs = observe(reg, NOON)
    for minute in range(40):
        t = NOON + minute * MIN
        feed_all(obs, t, but="s-disp")
        obs.reading("s-meter", t, {"energy_kwh_total": 500.0})  # never moves
        obs.reading("s-disp", t, {"temp_c": 95.0, "energy_kwh_total": 10 + minute * 0.03})
    conds = detect(obs, reg, TH, NOON + 39 * MIN)
    [stuck] = [c for c in conds.values() if c.rule is Rule.METER_STUCK]
    assert stuck.since_ms == NOON + 30 * MIN
    # A meter that does not move while nothing draws is not stuck.
    obs2 = observe(reg, NOON)
    for minute in range(40):
        feed_all(obs2, NOON + minute * MIN)
        obs2.reading("s-meter", NOON + minute * MIN, {"energy_kwh_total": 500.0})
    assert detect(obs2, reg, TH, NOON + 39 * MIN) == {}


def test_door_counter_silent_through_opening_hours() -> None:
    reg = registry()
    opening = int(datetime(2026, 11, 24, 7, tzinfo=SHANGHAI).timestamp() * 1000)
    obs = observe(reg, opening - 60 * MIN)
    for minute in range(0, 60 * 4 + 1, 5):  # 06:00 to 10:00, nobody comes in
        feed_all(obs, opening - 60 * MIN + minute * MIN)
        obs.reading("s-door", opening - 60 * MIN + minute * MIN, {"in_total": 7, "out_total": 7})
    conds = detect(obs, reg, TH, opening + 3 * 60 * MIN)
    [door] = conds.values()
    # Counted from the opening at 07:00, not from the last visit: three hours → 10:00.
    assert (door.rule, door.since_ms) == (Rule.DOOR_SILENT, opening + 3 * 60 * MIN)
    assert detect(obs, reg, TH, opening + 3 * 60 * MIN - 1) == {}


def test_opening_hours_across_midnight() -> None:
    spec = registry("22:00-06:00").stations["s"]
    late = datetime(2026, 11, 24, 23, 30, tzinfo=SHANGHAI)
    assert spec.open_since(late) == late.replace(hour=22, minute=0)
    early = datetime(2026, 11, 25, 5, tzinfo=SHANGHAI)
    assert spec.open_since(early) == datetime(2026, 11, 24, 22, tzinfo=SHANGHAI)
    assert spec.open_since(datetime(2026, 11, 25, 12, tzinfo=SHANGHAI)) is None
    always = registry(None).stations["s"]
    assert always.open_since(late) == late - timedelta(days=1)


def _firing(rule: Rule, device: str | None, since: int) -> AlertBook:
    book = AlertBook()
    key = f"{rule}:s:{device or '*'}"
    book.alerts[key] = Alert(key, rule, "s", device, since, AlertState.FIRING)
    return book


def test_restored_alerts_hold_until_fresh_messages_clear_them() -> None:
    reg = registry()
    obs = observe(reg, NOON)  # a restart at noon: every device counted as just seen
    restore_beliefs(obs, _firing(Rule.DEVICE_SILENT, "s-door", NOON - 60 * MIN), TH)
    assert {c.rule for c in detect(obs, reg, TH, NOON).values()} == {Rule.DEVICE_SILENT}
    obs.reading("s-door", NOON + MIN, {"in_total": 1, "out_total": 0})  # it reports again
    assert detect(obs, reg, TH, NOON + MIN) == {}

    obs = observe(reg, NOON)
    restore_beliefs(obs, _firing(Rule.STATION_DOWN, None, NOON - 60 * MIN), TH)
    assert Rule.STATION_DOWN in {c.rule for c in detect(obs, reg, TH, NOON).values()}
    # The agent says it is back and its devices report; none of them sends a status.
    obs.status("s-gw", online=True, now_ms=NOON + MIN)
    feed_all(obs, NOON + MIN)
    assert detect(obs, reg, TH, NOON + MIN) == {}
