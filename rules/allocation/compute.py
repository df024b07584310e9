"""One station's month: main meter, measured sub-loads, residual, priced and shared (SPEC §8).

The main meter is the station's bill. Each measured sub-load (dispenser,
locker, sub-meter) goes to the parties its policy names; the residual (main
minus the loads, per time-of-use period) is shared by the policy's basis.
Everything is Decimal from the measured quantities on, so the parties' exact
amounts add up to the station's, and rounding to the fen loses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rules.allocation.findings import Code, Finding
from rules.allocation.money import round_fen, split_fen
from rules.allocation.registers import Usage, Window
from rules.allocation.tariff import Period, TariffVersion
from rules.allocation.usage import QTY, RegisterUsage, register_usage
from rules.allocation.usage import quantity as _qty
from waystation.contract import Kind
from waystation.parties import ResidualBasis, Shares
from waystation.registry import DeviceSpec, Registry, Role, Utility

__all__ = [
    "PartyLine",
    "Register",
    "StationResult",
    "UtilityResult",
    "allocate_station",
    "slot_periods",
    "station_registers",
]

# A residual below zero by more than this share of the main meter is reported.
RESIDUAL_TOLERANCE = Decimal("0.02")
WATER = "water"  # the single "period" of water, which has no time of use

UNITS = {Utility.ELECTRICITY: "kWh", Utility.WATER: "m³"}


@dataclass(frozen=True)
class Register:
    """A cumulative register the allocation reads: which device, field and how to scale it."""

    device: str
    measurement: str
    field: str
    unit: str
    max_rate: float  # per hour, in the register's own unit
    utility: Utility | None  # None: visits
    main: bool = False
    scale: Decimal = Decimal(1)  # to the utility's unit (litres → m³)
    period: Period | None = None  # one of a meter's own time-of-use registers
    interval: timedelta = timedelta(seconds=60)  # how often the device reports (registry)


# Plausible growth per hour by default (kWh, m³, litres, visits).
_MAX_RATE = {
    ("meter", "energy_kwh_total", Role.MAIN): 500.0,
    ("meter", "energy_kwh_total", Role.SUB): 100.0,
    ("meter", "water_m3_total", Role.MAIN): 30.0,
    ("meter", "water_m3_total", Role.SUB): 10.0,
    ("water_dispenser", "energy_kwh_total", None): 15.0,
    ("water_dispenser", "water_l_total", None): 600.0,
    ("charging_locker", "energy_kwh_total", None): 30.0,
    ("door_counter", "in_total", None): 5000.0,
}


def _register(device: str, spec: DeviceSpec, field_name: str, utility: Utility | None) -> Register:
    role = spec.role if spec.kind is Kind.METER else None
    rate = spec.max_rate or _MAX_RATE[(spec.kind.value, field_name, role)]
    unit = {"energy_kwh_total": "kWh", "water_m3_total": "m³", "water_l_total": "l"}.get(
        field_name, "visits"
    )
    scale = Decimal("0.001") if field_name == "water_l_total" else Decimal(1)
    return Register(
        device,
        spec.kind.value,
        field_name,
        unit,
        rate,
        utility,
        role is Role.MAIN,
        scale,
        interval=spec.interval,
    )


def station_registers(registry: Registry, station_id: str) -> list[Register]:
    """Every register of the station that the allocation reads."""
    out: list[Register] = []
    for device, spec in registry.stations[station_id].devices.items():
        match spec.kind:
            case Kind.METER:
                field_name = (
                    "energy_kwh_total" if spec.utility is Utility.ELECTRICITY else "water_m3_total"
                )
                out.append(_register(device, spec, field_name, spec.utility))
                if spec.tou_registers:
                    total = out[-1]
                    out.extend(
                        replace(total, field=f"energy_kwh_{p}_total", period=p) for p in Period
                    )
            case Kind.WATER_DISPENSER:
                out.append(_register(device, spec, "energy_kwh_total", Utility.ELECTRICITY))
                out.append(_register(device, spec, "water_l_total", Utility.WATER))
            case Kind.CHARGING_LOCKER:
                out.append(_register(device, spec, "energy_kwh_total", Utility.ELECTRICITY))
            case Kind.DOOR_COUNTER:
                out.append(_register(device, spec, "in_total", None))
            case Kind.GATEWAY:
                pass
    return out


def slot_periods(window: Window, tz: ZoneInfo, version: TariffVersion) -> list[Period]:
    """The time-of-use period of each slot, by its local start time."""
    out = []
    for k in range(window.slots):
        local = datetime.fromtimestamp((window.start_ms + k * window.slot_ms) / 1000, UTC)
        local = local.astimezone(tz)
        out.append(version.electricity.table(local.month)[local.hour])
    return out


@dataclass(frozen=True)
class PartyLine:
    """One export row: a party's part of one utility at one station."""

    station: str
    station_name: str
    party: str
    party_name: str
    party_type: str
    utility: Utility
    quantity: Decimal
    unit: str
    tou: dict[str, Decimal]
    cost: Decimal
    share: Decimal  # fraction of the station's cost for this utility
    estimated_fraction: Decimal
    notes: tuple[tuple[Code, str | None], ...]  # the findings that touched it: (code, device)


@dataclass
class UtilityResult:
    utility: Utility
    quantity: Decimal
    tou: dict[str, Decimal]
    cost: Decimal
    lines: list[PartyLine]
    union_cost: Decimal

    @property
    def union_saving(self) -> Decimal:
        """What the union does not pay against paying the whole bill itself."""
        return self.cost - self.union_cost


@dataclass
class StationResult:
    station: str
    name: str
    timezone: str  # its month is this zone's; its findings' times are shown in it
    utilities: list[UtilityResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # Each register's month in its own unit (not the meters' period registers): the usage
    # the scorecard shows beside the service levels.
    usage: list[RegisterUsage] = field(default_factory=list)


@dataclass
class _Component:
    """A measured load or the residual, with the parties sharing it."""

    devices: tuple[str, ...]
    shares: dict[str, Decimal]  # party → fraction, summing to one
    tou: dict[str, Decimal]
    estimated: Decimal


def _fractions(
    registry: Registry, station: str, weights: Mapping[str, Decimal]
) -> dict[str, Decimal]:
    merged: dict[str, Decimal] = {}
    for name, weight in weights.items():
        party = registry.party(station, name)
        merged[party] = merged.get(party, Decimal(0)) + weight
    total = sum(merged.values(), Decimal(0))
    return {party: weight / total for party, weight in merged.items()}


def _as_weights(shares: Shares) -> dict[str, Decimal]:
    return {shares: Decimal(1)} if isinstance(shares, str) else dict(shares)


class _StationAllocator:
    def __init__(
        self,
        registry: Registry,
        station: str,
        usages: Mapping[tuple[str, str], Usage],
        version: TariffVersion,
        periods: list[Period],
    ) -> None:
        self.registry = registry
        self.station = station
        self.spec = registry.stations[station]
        self.policy = registry.policy(station)
        self.usages = usages
        self.version = version
        self.periods = periods
        zone = self.spec.timezone or registry.timezone
        self.result = StationResult(station, self.spec.name, zone)
        for (_device, field_name), usage in usages.items():
            if _is_period_register(field_name) and any(
                f.code is Code.NO_DATA for f in usage.findings
            ):
                continue  # a meter that does not report its period registers: nothing to say
            self.result.findings.extend(usage.findings)

    def tou(self, reg: Register) -> tuple[dict[str, Decimal], Decimal]:
        usage = self.usages[(reg.device, reg.field)]
        if reg.utility is Utility.WATER:
            return {WATER: _qty(usage.total, reg.scale)}, _qty(usage.estimated, reg.scale)
        sums: dict[str, float] = {}
        for period, used in zip(self.periods, usage.slots, strict=True):
            sums[period] = sums.get(period, 0.0) + used
        return {p: _qty(v) for p, v in sums.items()}, _qty(usage.estimated)

    def meter_tou(
        self, main: Register, registers: list[Register], derived: dict[str, Decimal]
    ) -> dict[str, Decimal]:
        """The main meter's own period registers, when it keeps them; else the derived split."""
        own = [r for r in registers if r.device == main.device and r.period is not None]
        measured = {r.period: r for r in own if not self._silent_all_month(r)}
        if not measured:
            return derived
        prices = self.version.electricity.prices
        tou: dict[str, Decimal] = dict.fromkeys(derived, Decimal(0))
        for period, reg in measured.items():
            quantity = _qty(self.usages[(reg.device, reg.field)].total)
            # A period the tariff does not price this month is billed as flat.
            key = period if period in prices and period in derived else Period.FLAT
            tou[key] = tou.get(key, Decimal(0)) + quantity
        total = sum(derived.values(), Decimal(0))
        gap = abs(sum(tou.values(), Decimal(0)) - total)
        self.note(Code.METER_TOU, main.device)
        if gap > max(Decimal("0.5"), total * Decimal("0.01")):
            self.note(Code.METER_TOU_MISMATCH, main.device, gap=gap, unit="kWh")
        return tou

    def _silent_all_month(self, reg: Register) -> bool:
        return any(f.code is Code.NO_DATA for f in self.usages[(reg.device, reg.field)].findings)

    def residual_shares(self) -> dict[str, Decimal]:
        residual = self.policy.residual
        if residual.by is not ResidualBasis.VISITS:
            return _fractions(self.registry, self.station, residual.weights())
        visits = {
            name: _qty(self.usages[(counter, "in_total")].total)
            for name, counter in residual.counters().items()
        }
        if sum(visits.values()) <= 0:
            self.note(Code.NO_VISITS)
            visits = dict.fromkeys(visits, Decimal(1))
        return _fractions(self.registry, self.station, visits)

    def note(self, code: Code, device: str | None = None, **args: str | Decimal) -> None:
        """A finding of the station's month; `args` fill its wording (rules.allocation.wording)."""
        self.result.findings.append(
            Finding(code, self.station, device, args=tuple(sorted(args.items())))
        )

    def price(self, period: str) -> Decimal:
        if period == WATER:
            return self.version.water.price
        return self.version.electricity.prices[Period(period)]

    def components(self, utility: Utility, registers: list[Register]) -> list[_Component] | None:
        mains = [r for r in registers if r.utility is utility and r.main and r.period is None]
        loads = [r for r in registers if r.utility is utility and not r.main]
        if not mains and not loads:
            return None
        silent = mains if mains and all(self._silent_all_month(r) for r in mains) else []
        if silent:
            mains = []  # a dead main meter must not zero the bill: fall back to the loads
        comps = []
        for reg in loads:
            tou, est = self.tou(reg)
            shares = self.policy.devices.get(reg.device, self.policy.loads)
            fractions = _fractions(self.registry, self.station, _as_weights(shares))
            comps.append(_Component((reg.device,), fractions, tou, est))
        main_tou: dict[str, Decimal] = {}
        main_est = Decimal(0)
        for reg in mains:
            tou, est = self.tou(reg)
            tou = self.meter_tou(reg, registers, tou)
            main_est += est
            for p, q in tou.items():
                main_tou[p] = main_tou.get(p, Decimal(0)) + q
        if silent:
            billed = sum(_sum_tou(comps).values(), Decimal(0))
            self.note(
                Code.MAIN_METER_SILENT,
                silent[0].device,
                utility=utility.value,
                billed=billed,
                unit=UNITS[utility],
            )
            return comps
        if not mains:
            self.note(Code.NO_MAIN_METER, utility=utility.value)
            return comps
        self._reconcile(utility, comps, main_tou)
        load_tou = _sum_tou(comps)
        residual = {p: q - load_tou.get(p, Decimal(0)) for p, q in main_tou.items()}
        residual_est = min(
            sum(residual.values(), Decimal(0)), main_est + sum(c.estimated for c in comps)
        )
        comps.append(
            _Component(
                tuple(r.device for r in mains), self.residual_shares(), residual, residual_est
            )
        )
        return comps

    def _reconcile(
        self, utility: Utility, comps: list[_Component], main: dict[str, Decimal]
    ) -> None:
        """Loads above the main meter in a period are scaled down to it; beyond tolerance, noted."""
        loads = _sum_tou(comps)
        main_total = sum(main.values(), Decimal(0))
        excess = sum(loads.values(), Decimal(0)) - main_total
        if excess > max(Decimal("0.5"), main_total * RESIDUAL_TOLERANCE):
            self.note(
                Code.RESIDUAL_NEGATIVE, utility=utility.value, excess=excess, unit=UNITS[utility]
            )
        for period, load in loads.items():
            cap = main.get(period, Decimal(0))
            if load > cap:
                factor = cap / load
                for comp in comps:
                    if period in comp.tou:
                        comp.tou[period] = (comp.tou[period] * factor).quantize(QTY)
                # Quantizing may leave a ten-thousandth over: take it from the largest load.
                over = sum((c.tou.get(period, Decimal(0)) for c in comps), Decimal(0)) - cap
                if over > 0:
                    biggest = max(comps, key=lambda c: c.tou.get(period, Decimal(0)))
                    biggest.tou[period] -= over

    def utility(self, utility: Utility, registers: list[Register]) -> UtilityResult | None:
        comps = self.components(utility, registers)
        if comps is None:
            return None
        exact: dict[str, Decimal] = {}
        qty: dict[str, Decimal] = {}
        tou: dict[str, dict[str, Decimal]] = {}
        est: dict[str, Decimal] = {}
        devices: dict[str, set[str]] = {}
        for comp in comps:
            cost = sum((q * self.price(p) for p, q in comp.tou.items()), Decimal(0))
            for party, frac in comp.shares.items():
                exact[party] = exact.get(party, Decimal(0)) + cost * frac
                qty[party] = qty.get(party, Decimal(0)) + frac * sum(comp.tou.values(), Decimal(0))
                est[party] = est.get(party, Decimal(0)) + frac * comp.estimated
                party_tou = tou.setdefault(party, {})
                for p, q in comp.tou.items():
                    party_tou[p] = party_tou.get(p, Decimal(0)) + frac * q
                devices.setdefault(party, set()).update(comp.devices)
        total = round_fen(sum(exact.values(), Decimal(0)))
        costs = split_fen(total, exact)
        lines = [
            self._line(
                utility=utility,
                party=party,
                quantity=qty[party],
                tou=tou[party],
                cost=costs[party],
                total=total,
                estimated=est[party],
                devices=devices[party],
            )
            for party in sorted(exact)
        ]
        union = self.registry.party(self.station, "union")
        station_tou = _sum_tou(comps)
        return UtilityResult(
            utility,
            sum(station_tou.values(), Decimal(0)).quantize(QTY),
            {p: q.quantize(QTY) for p, q in station_tou.items()},
            total,
            lines,
            costs.get(union, Decimal(0)),
        )

    def _line(
        self,
        *,
        utility: Utility,
        party: str,
        quantity: Decimal,
        tou: dict[str, Decimal],
        cost: Decimal,
        total: Decimal,
        estimated: Decimal,
        devices: set[str],
    ) -> PartyLine:
        spec = self.registry.parties[party]
        # A main meter's finding touches every line of its utility; a load's, its parties'.
        mains = {
            d for d, spec in self.spec.devices.items()
            if spec.role is Role.MAIN and spec.utility is utility
        }  # fmt: skip
        notes = sorted(
            {(f.code, f.device) for f in self.result.findings if f.device in devices | mains}
            | {(f.code, None) for f in self.result.findings if f.device is None},
            key=lambda note: (note[0].value, note[1] or ""),
        )
        return PartyLine(
            station=self.station,
            station_name=self.spec.name,
            party=party,
            party_name=spec.name,
            party_type=spec.type.value,
            utility=utility,
            quantity=quantity.quantize(Decimal("0.001")),
            unit=UNITS[utility],
            tou={p: q.quantize(Decimal("0.001")) for p, q in tou.items() if p != WATER},
            cost=cost,
            share=(cost / total).quantize(Decimal("0.0001")) if total else Decimal(0),
            estimated_fraction=(estimated / quantity).quantize(Decimal("0.0001"))
            if quantity > 0
            else Decimal(0),
            notes=tuple(notes),
        )


def _is_period_register(field_name: str) -> bool:
    return field_name in {f"energy_kwh_{p}_total" for p in Period}


def _sum_tou(comps: list[_Component]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for comp in comps:
        for p, q in comp.tou.items():
            out[p] = out.get(p, Decimal(0)) + q
    return out


def allocate_station(
    registry: Registry,
    station: str,
    usages: Mapping[tuple[str, str], Usage],
    version: TariffVersion,
    periods: list[Period],
) -> StationResult:
    """Price and share one station's month, from each register's usage keyed (device, field)."""
    allocator = _StationAllocator(registry, station, usages, version, periods)
    registers = station_registers(registry, station)
    allocator.result.usage = [
        register_usage(r.device, Kind(r.measurement), r.field, r.unit, usages[(r.device, r.field)])
        for r in registers
        if r.period is None
    ]
    for utility in Utility:
        result = allocator.utility(utility, registers)
        if result is not None:
            allocator.result.utilities.append(result)
    return allocator.result
