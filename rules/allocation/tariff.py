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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from waystation.configerror import ConfigError, Invalid, Problem, Text
from waystation.configfile import document_from_data, load_document
from waystation.validation import validate

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


class TariffError(ConfigError):
    """A tariff file is invalid, or no tariff applies to a month."""


class Period(StrEnum):
    """Time-of-use periods, in the order bills list them."""

    SHARP = "sharp"  # 尖峰
    PEAK = "peak"  # 峰
    FLAT = "flat"  # 平
    VALLEY = "valley"  # 谷


_RANGE_RE = re.compile(r"^\s*(\d{1,2})\s*-\s*(\d{1,2})\s*$")
Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


def _hours(spec: str) -> list[int]:
    """`10-12` is hours 10 and 11; `23-7` wraps past midnight."""
    m = _RANGE_RE.match(str(spec))
    start, end = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
    if not (0 <= start <= 23 and 0 <= end <= 24) or start == end:
        raise Invalid(
            Text(f"{spec!r} is not an hour range like 10-12 or 23-7 within a day",
                 f"{spec!r} 不是一天内的小时段，应写成 10-12 或 23-7 这样"),
            Text("start-end in local hours, end exclusive; separate ranges with ASCII commas",
                 "写当地时间“起-止”小时（不含止），多个时段用半角逗号隔开"),
        )  # fmt: skip
    return list(range(start, end)) if start < end else [*range(start, 24), *range(end)]


def _months(key: int | str) -> list[int]:
    try:
        months = [int(part) for part in str(key).split(",")]
    except ValueError:
        months = [0]
    if not all(1 <= m <= 12 for m in months):
        raise Invalid(
            Text(f"{key!r} is not a list of months like 7,8 (1 to 12)",
                 f"{key!r} 不是月份列表，应写成 7,8 这样（1 到 12）"),
        )  # fmt: skip
    return months


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PeriodTable = dict[Period, list[str]]


class ElectricityTariff(_Strict):
    prices: dict[Period, Price]
    periods: PeriodTable
    # Keyed by a month (8) or months (`7,8`); a month under two keys is refused.
    months: dict[int | str, PeriodTable] = Field(default_factory=dict)

    @field_validator("periods")
    @classmethod
    def _ranges(cls, value: PeriodTable) -> PeriodTable:
        """Each hour range on its own, so a bad one is named where it is written."""
        problems = []
        for period, ranges in value.items():
            for i, spec in enumerate(ranges):
                try:
                    _hours(spec)
                except Invalid as exc:
                    problems.append(((str(period), i), exc))
        if problems:
            raise Invalid(problems=problems)
        return value

    @field_validator("months")
    @classmethod
    def _overrides(cls, value: dict[int | str, PeriodTable]) -> dict[int | str, PeriodTable]:
        """Each override's months and hour ranges, no hour in two periods, no month twice."""
        problems: list[tuple[tuple[str | int, ...], Invalid]] = []
        under: dict[int, int | str] = {}
        for key, table in value.items():
            try:
                months = _months(key)
            except Invalid as exc:
                problems.append(((key,), exc))
                months = []
            for month in months:
                if month in under:
                    problems.append(((key,), _month_twice(month, under[month], key)))
                under.setdefault(month, key)
            taken: dict[int, Period] = {}
            for period, ranges in table.items():
                for i, spec in enumerate(ranges):
                    try:
                        hours = _hours(spec)
                    except Invalid as exc:
                        problems.append(((key, str(period), i), exc))
                        continue
                    both = next((h for h in hours if h in taken), None)
                    if both is not None:
                        problems.append(
                            ((key, str(period), i), _hour_twice(both, taken[both], period))
                        )
                    taken.update(dict.fromkeys(hours, period))
        if problems:
            raise Invalid(problems=problems)
        return value

    @model_validator(mode="after")
    def _tables(self) -> ElectricityTariff:
        base = self._base_table()
        if len(set(base)) < 2:
            raise Invalid(
                Text("a time-of-use table has 2 to 4 periods", "分时电价表要有 2 到 4 个时段")
            )
        for key in self.months:
            for month in _months(key):
                missing = set(self.table(month)) - set(self.prices)
                if missing:
                    raise _no_price(missing, f"month {month}: ", f"{month} 月：")
        missing = set(base) - set(self.prices)
        if missing:
            raise _no_price(missing, "", "")
        return self

    def _base_table(self) -> list[Period]:
        slots: list[Period | None] = [None] * 24
        for period, ranges in self.periods.items():
            for spec in ranges:
                for hour in _hours(spec):
                    if slots[hour] is not None:
                        raise _hour_twice(hour, slots[hour], period)
                    slots[hour] = period
        gaps = [h for h, p in enumerate(slots) if p is None]
        if gaps:
            raise Invalid(
                Text(f"hours {gaps} belong to no period", f"{gaps} 点不属于任何时段"),
                Text("the periods must cover the day exactly once", "各时段合起来要正好覆盖一天"),
            )  # fmt: skip
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


def _hour_twice(hour: int, first: Period | None, then: Period) -> Invalid:
    return Invalid(
        Text(f"hour {hour} is in both {first} and {then}", f"{hour} 点同时属于 {first} 和 {then}"),
        Text("each hour belongs to one period: correct the ranges",
             "每个小时只能属于一个时段：请改正小时段"),
        code="hour_twice",
    )  # fmt: skip


def _month_twice(month: int, first: int | str, then: int | str) -> Invalid:
    return Invalid(
        Text(f"month {month} is under both {str(first)!r} and {str(then)!r}",
             f"{month} 月同时出现在 {str(first)!r} 和 {str(then)!r} 下"),
        Text(f"write month {month}'s hours under one key only",
             f"{month} 月的时段只写在一个键下"),
        code="month_twice",
    )  # fmt: skip


def _no_price(missing: set[Period], en: str, zh: str) -> Invalid:
    periods = ", ".join(sorted(missing))
    return Invalid(
        Text(f"{en}no price for period(s) {periods}", f"{zh}时段 {periods} 没有电价"),
        Text("add them under `prices`", "在 `prices` 下补上它们"),
    )


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
            raise Invalid(
                Text("a tariff version starts on the first day of a month",
                     "电价版本要从某月 1 日开始"),
                Text(f"write {value:%Y-%m}-01", f"写成 {value:%Y-%m}-01"),
            )  # fmt: skip
        return value


class Tariff(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: str
    note: str = ""
    # The prices are made up (the shipped file): a scheduled bill refuses them, and a report
    # made with them says so on every row. Remove it once the prices are your bills'.
    example: bool = False
    currency: str = "CNY"
    versions: list[TariffVersion] = Field(min_length=1)

    @field_validator("versions")
    @classmethod
    def _ordered(cls, value: list[TariffVersion]) -> list[TariffVersion]:
        starts = [v.valid_from for v in value]
        if len(set(starts)) != len(starts):
            raise Invalid(Text("two versions start on the same day", "有两个版本在同一天开始"))
        return sorted(value, key=lambda v: v.valid_from)

    def version_for(self, month: date) -> TariffVersion:
        """The version in force for the month starting at `month`."""
        valid = [v for v in self.versions if v.valid_from <= month]
        if not valid:
            raise TariffError(
                Text(f"tariff {self.id!r} has no version for {month:%Y-%m} "
                     f"(its first starts {self.versions[0].valid_from})",
                     f"电价 {self.id!r} 没有适用于 {month:%Y-%m} 的版本"
                     f"（最早的版本从 {self.versions[0].valid_from} 开始）")
            )  # fmt: skip
        return valid[-1]


def parse_tariff(data: Any, source: str) -> Tariff:
    return validate(Tariff, document_from_data(data, source), error=TariffError)


# What other config files hold, to tell one from a tariff in a shared directory.
_OTHER_FILES = (
    ({"stations"}, Text("the station registry", "站点登记文件")),
    ({"channels", "thresholds", "timing"}, Text("the rules config", "规则配置")),
    ({"agent_device"}, Text("an edge agent's config", "边缘代理配置")),
)


def _other_file(data: Any) -> Text | None:
    """What a YAML file that is not a tariff looks like it is, if it says so by its keys."""
    if not isinstance(data, dict) or "versions" in data:
        return None
    return next((what for keys, what in _OTHER_FILES if keys & set(data)), None)


def load_tariffs(paths: list[Path]) -> dict[str, Tariff]:
    """Read tariff files, or every `*.yaml` and `*.yml` in a directory, keyed by tariff id.

    Every file is read and every problem of every file reported together. In a directory,
    the other config files (registry, rules config) are passed over: `/etc/waystation`
    holds them all; named as a tariff file, one is refused saying what it looks like.
    """
    files: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            found = sorted({*path.glob("*.yaml"), *path.glob("*.yml")})
            files.extend((f, True) for f in found)
        else:
            files.append((path, False))
    tariffs: dict[str, Tariff] = {}
    problems: list[Problem] = []
    for file, in_directory in files:
        try:
            document = load_document(file)
            other = _other_file(document.data)
            if other is not None and in_directory:
                continue
            if other is not None:
                raise TariffError.at(
                    str(file),
                    Text(f"not a tariff file: it looks like {other.en}",
                         f"不是电价文件：看起来是{other.zh}"),
                    Text("give the tariff files (or their directory) with --tariffs",
                         "用 --tariffs 给出电价文件（或其所在目录）"),
                    code="not_a_tariff",
                )  # fmt: skip
            tariff = validate(Tariff, document, error=TariffError)
        except ConfigError as exc:
            problems += exc.problems
            continue
        if tariff.id in tariffs:
            problems.append(
                Problem(
                    Text(
                        f"tariff id {tariff.id!r} is defined twice", f"电价编号 {tariff.id!r} 重复"
                    ),
                    Text("give each tariff file its own `id`", "每个电价文件要有自己的 `id`"),
                    file=str(file),
                    where="id",
                    code="duplicate_tariff",
                )
            )
        tariffs[tariff.id] = tariff
    if not tariffs and not problems:
        problems.append(
            Problem(
                Text(
                    f"no tariff files (*.yaml, *.yml) in {', '.join(map(str, paths))}",
                    f"{', '.join(map(str, paths))} 里没有电价文件（*.yaml、*.yml）",
                ),
                code="no_file",
            )
        )
    if problems:
        raise TariffError(problems)
    return tariffs


def shipped_tariffs() -> dict[str, Tariff]:
    """The example tariffs that come with Waystation (their prices are examples)."""
    return load_tariffs([SHIPPED_DIR])
