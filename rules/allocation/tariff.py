"""Tariffs as versioned configuration: time-of-use period tables and prices (SPEC §8).

A tariff file holds versions, each valid from the first day of a month. A
version's electricity part has a base period table (hour ranges in local time,
covering the day exactly once), optional per-month overrides (Sichuan's
critical peak in July, August, January and December) and a price per period;
its water part has the components of the price per m³. Prices are Decimal
from the file's text, never floats.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from waystation.validation import describe_errors

__all__ = [
    "ElectricityTariff",
    "Period",
    "Tariff",
    "TariffError",
    "TariffVersion",
    "WaterTariff",
    "load_tariffs",
    "shipped_tariffs",
]

SHIPPED_DIR = Path(__file__).parent / "tariffs"


class TariffError(ValueError):
    """A tariff file is invalid, or no tariff applies to a month."""


class Period(StrEnum):
    """Time-of-use periods, in the order bills list them."""

    SHARP = "sharp"  # 尖峰
    PEAK = "peak"  # 峰
    FLAT = "flat"  # 平
    VALLEY = "valley"  # 谷


PERIOD_LABELS_ZH = {Period.SHARP: "尖峰", Period.PEAK: "峰", Period.FLAT: "平", Period.VALLEY: "谷"}

_RANGE_RE = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


def _hours(spec: str) -> list[int]:
    """`10-12` is hours 10 and 11; `23-7` wraps past midnight."""
    m = _RANGE_RE.match(str(spec))
    if not m:
        raise ValueError(f"{spec!r} is not an hour range like 10-12 or 23-7")
    start, end = int(m.group(1)), int(m.group(2))
    if not (0 <= start <= 23 and 0 <= end <= 24) or start == end:
        raise ValueError(f"{spec!r} is not an hour range within a day")
    return list(range(start, end)) if start < end else [*range(start, 24), *range(end)]


def _months(key: str) -> list[int]:
    try:
        months = [int(part) for part in str(key).split(",")]
    except ValueError:
        raise ValueError(f"{key!r} is not a list of months like 7,8") from None
    if not all(1 <= m <= 12 for m in months):
        raise ValueError(f"{key!r}: months are 1 to 12")
    return months


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PeriodTable = dict[Period, list[str]]


class ElectricityTariff(_Strict):
    prices: dict[Period, Price]
    periods: PeriodTable
    months: dict[str, PeriodTable] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tables(self) -> ElectricityTariff:
        base = self._base_table()
        if len(set(base)) < 2:
            raise ValueError("a time-of-use table has 2 to 4 periods")
        for key in self.months:
            for month in _months(key):
                missing = set(self.table(month)) - set(self.prices)
                if missing:
                    raise ValueError(f"month {month}: no price for {', '.join(sorted(missing))}")
        missing = set(base) - set(self.prices)
        if missing:
            raise ValueError(f"no price for period(s) {', '.join(sorted(missing))}")
        return self

    def _base_table(self) -> list[Period]:
        slots: list[Period | None] = [None] * 24
        for period, ranges in self.periods.items():
            for spec in ranges:
                for hour in _hours(spec):
                    if slots[hour] is not None:
                        raise ValueError(f"hour {hour} is in both {slots[hour]} and {period}")
                    slots[hour] = period
        gaps = [h for h, p in enumerate(slots) if p is None]
        if gaps:
            raise ValueError(f"hours {gaps} belong to no period")
        return [p for p in slots if p is not None]

    def table(self, month: int) -> tuple[Period, ...]:
        """The period of each local hour 0-23 in this month."""
        slots = self._base_table()
        for key, override in self.months.items():
            if month in _months(key):
                for period, ranges in override.items():
                    for spec in ranges:
                        for hour in _hours(spec):
                            slots[hour] = period
        return tuple(slots)


class WaterTariff(_Strict):
    supply: Price
    sewage: Price = Decimal(0)
    resource_fee: Price = Decimal(0)

    @property
    def price(self) -> Decimal:
        """CNY per m³: supply + sewage treatment + water-resource fee."""
        return self.supply + self.sewage + self.resource_fee


class TariffVersion(_Strict):
    valid_from: date
    electricity: ElectricityTariff
    water: WaterTariff

    @field_validator("valid_from")
    @classmethod
    def _first_of_month(cls, value: date) -> date:
        if value.day != 1:
            raise ValueError("a tariff version starts on the first day of a month")
        return value


class Tariff(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: str
    note: str = ""
    currency: str = "CNY"
    versions: list[TariffVersion] = Field(min_length=1)

    @field_validator("versions")
    @classmethod
    def _ordered(cls, value: list[TariffVersion]) -> list[TariffVersion]:
        starts = [v.valid_from for v in value]
        if len(set(starts)) != len(starts):
            raise ValueError("two versions start on the same day")
        return sorted(value, key=lambda v: v.valid_from)

    def version_for(self, month: date) -> TariffVersion:
        """The version in force for the month starting at `month`."""
        valid = [v for v in self.versions if v.valid_from <= month]
        if not valid:
            raise TariffError(
                f"tariff {self.id!r} has no version for {month:%Y-%m} "
                f"(its first starts {self.versions[0].valid_from})"
            )
        return valid[-1]


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "tariff"


def parse_tariff(data: Any, source: str) -> Tariff:
    try:
        return Tariff.model_validate(data)
    except ValidationError as exc:
        raise TariffError(describe_errors(source, exc, _where)) from exc


def load_tariffs(paths: list[Path]) -> dict[str, Tariff]:
    """Read tariff files, or every `*.yaml` in a directory, keyed by tariff id."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    tariffs: dict[str, Tariff] = {}
    for file in files:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise TariffError(f"{file}: cannot read: {exc}") from exc
        tariff = parse_tariff(data, str(file))
        if tariff.id in tariffs:
            raise TariffError(f"{file}: tariff id {tariff.id!r} is defined twice")
        tariffs[tariff.id] = tariff
    if not tariffs:
        raise TariffError(f"no tariff files in {', '.join(map(str, paths))}")
    return tariffs


def shipped_tariffs() -> dict[str, Tariff]:
    """The example tariffs that come with Waystation (their prices are examples)."""
    return load_tariffs([SHIPPED_DIR])
