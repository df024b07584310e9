"""A simulated station: coherent physics for every device kind, driven by time.

One `StationSimulation` integrates the whole station forward in time, so its
readings agree with each other the way real ones do: visitors at the door
draw hot water, the dispenser heats and draws power, riders charge e-bike
batteries at lunch, and the main meter sees the sum of those loads plus the
station's own (lights, air conditioning). Time is an argument, not the wall
clock, so the same code serves live runs and fast backfills, and a seed makes
a run repeatable.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from waystation.contract import TARIFF_FIELDS, Kind
from waystation.registry import DeviceSpec, Role, Utility

__all__ = ["StationSimulation", "meter_period", "visitor_rate_per_hour"]

# Integration step: fine enough for the dispenser's thermostat, coarse enough
# that a month of backfill for a station takes well under a second.
STEP_S = 30.0
# The longest gap advance_to integrates; beyond it the simulation jumps.
MAX_CATCH_UP = timedelta(days=2)

DISPENSER_HEATER_KW = 2.0
DISPENSER_ON_BELOW_C = 88.0
DISPENSER_OFF_ABOVE_C = 96.0
DISPENSER_HEAT_C_PER_S = 0.05  # 2 kW into about 10 L of water
DISPENSER_LOSS_C_PER_S = 0.004  # standing losses at ~90 °C
ROOM_C = 20.0
CUP_L = 0.35
LOCKER_SLOTS = 12
LOCKER_SLOT_KW = 0.18  # an e-bike battery on charge
WASH_L_PER_VISIT = 4.0  # toilet and hand washing
# A sub-meter measures part of the station's own use (a partner's rooms, its taps).
SUB_METER_SHARE = 0.4
# A meter that keeps time-of-use registers (DL/T 645 rates 1-4: 尖 峰 平 谷) is programmed
# with the utility's periods: Sichuan's since 2023-06 (SPEC §8), local hours.
_PEAK_HOURS = {10, 11, 15, 16, 17, 18, 19, 20}
_FLAT_HOURS = {7, 8, 9, 12, 13, 14, 21, 22}
_SHARP = {7: {15, 16}, 8: {15, 16}, 1: {19, 20}, 12: {19, 20}}  # month → its critical-peak hours


def meter_period(local: datetime) -> str:
    """The time-of-use period a Sichuan meter counts this local hour in."""
    if local.hour in _SHARP.get(local.month, ()):
        return "sharp"
    if local.hour in _PEAK_HOURS:
        return "peak"
    return "flat" if local.hour in _FLAT_HOURS else "valley"


def visitor_rate_per_hour(local: datetime) -> float:
    """Visits an hour at a rider station: meal-time peaks, a quiet night."""
    h = local.hour + local.minute / 60
    base = 2.0 if 6 <= h < 23 else 0.5
    lunch = 14.0 * math.exp(-((h - 12.2) ** 2) / 0.9)
    dinner = 10.0 * math.exp(-((h - 18.3) ** 2) / 1.1)
    afternoon = 4.0 * math.exp(-((h - 15.5) ** 2) / 2.0)
    return base + lunch + dinner + afternoon


def _charging_target(local: datetime) -> float:
    """Fraction of locker slots in use: riders top up before and after the lunch rush."""
    h = local.hour + local.minute / 60
    return min(
        0.9, 0.1 + 0.6 * math.exp(-((h - 13.5) ** 2) / 4.0) + 0.3 * math.exp(-((h - 20) ** 2) / 3)
    )


def _base_load_kw(local: datetime) -> float:
    """Lights, fridge, air conditioning: higher in summer afternoons and winter evenings."""
    h = local.hour
    lights = 0.25 if (h >= 18 or h < 7) else 0.08
    season = {6: 0.8, 7: 1.2, 8: 1.2, 9: 0.6, 12: 0.5, 1: 0.6, 2: 0.4}.get(local.month, 0.15)
    daytime = 1.0 if 9 <= h < 22 else 0.3
    return 0.12 + lights + season * daytime


@dataclass
class _Dispenser:
    water_l: float = 0.0
    energy_kwh: float = 0.0
    temp_c: float = 92.0
    heating: bool = False
    cold: bool = False  # fault injection: heater broken


@dataclass
class _Locker:
    in_use: int = 0
    energy_kwh: float = 0.0


class StationSimulation:
    """All simulated devices of one station, advanced together."""

    def __init__(
        self,
        devices: dict[str, DeviceSpec],
        start: datetime,
        tz: ZoneInfo,
        *,
        seed: int = 0,
    ) -> None:
        self.devices = devices
        self.tz = tz
        self.now = start
        self._started = start
        self._rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self._dispensers = {
            d: _Dispenser() for d, s in devices.items() if s.kind is Kind.WATER_DISPENSER
        }
        self._lockers = {d: _Locker() for d, s in devices.items() if s.kind is Kind.CHARGING_LOCKER}
        self._visits = 0
        self._present = 0
        self._station_kwh = 0.0  # base load, only seen by the main meter
        self._wash_l = 0.0
        # Registers of real meters do not start at zero.
        self._meter_offset = {
            d: self._rng.uniform(100, 5000) for d, s in devices.items() if s.kind is Kind.METER
        }
        self._resets: dict[str, datetime] = {}
        # The station's electricity by time-of-use period, for meters that keep those registers.
        self._period_kwh = dict.fromkeys(("sharp", "peak", "flat", "valley"), 0.0)  # TARIFF_FIELDS

    # --- fault injection -----------------------------------------------------------

    def set_dispenser_cold(
        self, device_id: str, *, cold: bool, temp_c: float | None = None
    ) -> None:
        """Break (or mend) the heater; `temp_c` skips the cooling-down to that temperature."""
        self._dispensers[device_id].cold = cold
        if temp_c is not None:
            self._dispensers[device_id].temp_c = temp_c

    def schedule_meter_reset(self, device_id: str, at: datetime) -> None:
        """At `at`, the meter's register drops to zero, as after a reset or a firmware update."""
        self._resets[device_id] = at

    def _apply_resets(self) -> None:
        for device_id, at in list(self._resets.items()):
            if self.now >= at:
                value = next(iter(self.data(device_id).values()))
                water = self.devices[device_id].utility is Utility.WATER
                self._meter_offset[device_id] -= value * 10 if water else value
                del self._resets[device_id]

    # --- physics -------------------------------------------------------------------

    def advance_to(self, t: datetime) -> None:
        # A jump of the clock (NTP reaching a box that booted in 1970) or a long
        # pause is skipped, not integrated: the station was simply not observed.
        self.now = max(self.now, t - MAX_CATCH_UP)
        while self.now < t:
            dt = min(STEP_S, (t - self.now).total_seconds())
            self._step(self.now, dt)
            self.now += timedelta(seconds=dt)
            if self._resets:
                self._apply_resets()

    def _poisson(self, mean: float) -> int:
        # Knuth's method is fine for the small means of one step.
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= limit:
                return k
            k += 1

    def _step(self, t: datetime, dt: float) -> None:
        local = t.astimezone(self.tz)
        drawn_before = self._station_kwh + self._sub_load_kwh()
        arrivals = self._poisson(visitor_rate_per_hour(local) * dt / 3600)
        self._visits += arrivals
        self._present = max(0, self._present + arrivals - self._poisson(self._present * dt / 900))
        self._wash_l += arrivals * WASH_L_PER_VISIT * self._rng.uniform(0.3, 1.0)
        self._station_kwh += _base_load_kw(local) * dt / 3600
        for disp in self._dispensers.values():
            self._step_dispenser(disp, arrivals, dt)
        target = _charging_target(local)
        for locker in self._lockers.values():
            want = round(target * LOCKER_SLOTS)
            if locker.in_use != want and self._rng.random() < dt / 300:
                locker.in_use += 1 if want > locker.in_use else -1
            locker.energy_kwh += locker.in_use * LOCKER_SLOT_KW * dt / 3600
        drawn = self._station_kwh + self._sub_load_kwh() - drawn_before
        self._period_kwh[meter_period(local)] += drawn

    def _step_dispenser(self, d: _Dispenser, arrivals: int, dt: float) -> None:
        cups = sum(1 for _ in range(arrivals) if self._rng.random() < 0.6)
        drawn = cups * CUP_L
        d.water_l += drawn
        d.temp_c -= drawn * 2.0  # fresh cold water mixes in
        d.temp_c -= DISPENSER_LOSS_C_PER_S * dt * (d.temp_c - ROOM_C) / 70
        if d.temp_c < DISPENSER_ON_BELOW_C:
            d.heating = True
        elif d.temp_c > DISPENSER_OFF_ABOVE_C:
            d.heating = False
        if d.heating and not d.cold:
            d.temp_c += DISPENSER_HEAT_C_PER_S * dt
            d.energy_kwh += DISPENSER_HEATER_KW * dt / 3600
        d.temp_c = max(ROOM_C, min(d.temp_c, 99.5))

    # --- readings -------------------------------------------------------------------

    def _sub_load_kwh(self) -> float:
        return sum(d.energy_kwh for d in self._dispensers.values()) + sum(
            lk.energy_kwh for lk in self._lockers.values()
        )

    def _power_w(self) -> float:
        local = self.now.astimezone(self.tz)
        heaters = sum(
            DISPENSER_HEATER_KW for d in self._dispensers.values() if d.heating and not d.cold
        )
        lockers = sum(lk.in_use * LOCKER_SLOT_KW for lk in self._lockers.values())
        return round((_base_load_kw(local) + heaters + lockers) * 1000, 1)

    def data(
        self, device_id: str, *, outbox_depth: int = 0, outbox_dropped: int = 0
    ) -> dict[str, Any]:
        """The `data` object of a reading of this device at the simulation's current time."""
        spec = self.devices[device_id]
        if spec.kind is Kind.DOOR_COUNTER:
            return {"in_total": self._visits, "out_total": self._visits - self._present}
        if spec.kind is Kind.WATER_DISPENSER:
            d = self._dispensers[device_id]
            return {
                "water_l_total": round(d.water_l, 3),
                "energy_kwh_total": round(d.energy_kwh, 4),
                "temp_c": round(d.temp_c, 1),
                "heating": d.heating,
            }
        if spec.kind is Kind.CHARGING_LOCKER:
            lk = self._lockers[device_id]
            return {
                "slots": LOCKER_SLOTS,
                "slots_in_use": lk.in_use,
                "energy_kwh_total": round(lk.energy_kwh, 4),
                "fault_slots": 0,
            }
        if spec.kind is Kind.METER:
            return self._meter(device_id, spec)
        return {
            "uptime_s": round((self.now - self._started).total_seconds(), 1),
            "outbox_depth": outbox_depth,
            "outbox_dropped_total": outbox_dropped,
        }

    def _meter(self, device_id: str, spec: DeviceSpec) -> dict[str, Any]:
        offset = self._meter_offset[device_id]
        sub = spec.role is Role.SUB
        if spec.utility is Utility.WATER:
            if sub:
                return {
                    "water_m3_total": round(offset / 10 + self._wash_l * SUB_METER_SHARE / 1000, 4)
                }
            drawn_l = self._wash_l + sum(d.water_l for d in self._dispensers.values())
            return {"water_m3_total": round(offset / 10 + drawn_l / 1000, 4)}
        if sub:
            return {"energy_kwh_total": round(offset + self._station_kwh * SUB_METER_SHARE, 3)}
        data: dict[str, Any] = {
            "energy_kwh_total": round(offset + self._station_kwh + self._sub_load_kwh(), 3),
            "power_w": self._power_w(),
        }
        if spec.tou_registers:
            # The period registers start where the total does, shared out, and grow with it.
            for name, kwh in zip(TARIFF_FIELDS, self._period_kwh.values(), strict=True):
                data[name] = round(offset / 4 + kwh, 3)
        return data
