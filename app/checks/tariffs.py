"""The tariffs: loaded, every station's found, and a warning (or, to bill monthly, an error)
where the prices are only the shipped examples."""

from __future__ import annotations

from app.checks.plan import Checked, Plan
from rules.allocation.tariff import load_tariffs, shipped_tariffs
from waystation.configerror import ConfigError, Problem, Severity, Text

__all__ = ["check_tariffs"]


def check_tariffs(plan: Plan, out: Checked) -> None:
    try:
        out.tariffs = load_tariffs(plan.tariffs) if plan.tariffs else shipped_tariffs()
    except ConfigError as exc:
        out.collect(exc)
        return
    registry = out.registry
    assert registry is not None  # noqa: S101 - checked by the caller
    if not registry.parties:
        return
    used: dict[str, list[str]] = {}
    for station_id, station in registry.stations.items():
        wanted = station.tariff or registry.tariff
        path: tuple[str, ...] = (
            ("stations", station_id, "tariff") if station.tariff else ("tariff",)
        )
        if wanted is None and len(out.tariffs) != 1:
            out.problems.append(
                out.at_registry(
                    ("stations", station_id),
                    Text(
                        "the station names no tariff, and more than one is loaded",
                        "站点没有指定电价，而已加载的电价不止一个",
                    ),
                    Text(
                        f"add `tariff:` to the registry or the station (loaded: "
                        f"{', '.join(out.tariffs)})",
                        f"在登记文件或站点中加上 `tariff:`（已加载：{', '.join(out.tariffs)}）",
                    ),
                    code="no_tariff",
                )
            )
            continue
        chosen = wanted or next(iter(out.tariffs))
        if chosen not in out.tariffs:
            problem = _unknown_tariff(out, path, chosen, plan)
            if problem not in out.problems:
                out.problems.append(problem)
            continue
        used.setdefault(chosen, []).append(station_id)
    for tariff_id in used:
        if out.tariffs[tariff_id].example:
            out.problems.append(_example(tariff_id, plan))


def _unknown_tariff(out: Checked, path: tuple[str, ...], wanted: str, plan: Plan) -> Problem:
    assert out.tariffs is not None  # noqa: S101 - loaded by the caller
    loaded = ", ".join(out.tariffs)
    source = "--tariffs" if plan.tariffs else "the shipped example tariffs (no --tariffs given)"
    source_zh = "--tariffs" if plan.tariffs else "随软件附带的示例电价（未给 --tariffs）"
    return out.at_registry(
        path,
        Text(
            f"tariff {wanted!r} is not loaded: {source} hold(s) {loaded}",
            f"电价 {wanted!r} 没有加载：{source_zh} 中只有 {loaded}",
        ),
        Text(
            "give its file with --tariffs FILE|DIR (or WAYSTATION_TARIFFS)",
            "用 --tariffs 文件或目录（或 WAYSTATION_TARIFFS）给出它的电价文件",
        ),
        on_key=False,
        code="unknown_tariff",
    )


def _example(tariff_id: str, plan: Plan) -> Problem:
    if plan.scheduled_billing:
        return Problem(
            Text(
                f"tariff {tariff_id!r} holds EXAMPLE prices: the monthly allocation job "
                "refuses to bill with them",
                f"电价 {tariff_id!r} 是示例价格：每月自动分摊不能按示例价格出账",
            ),
            Text(
                "copy the tariff file, put in the prices on your utility bills, remove "
                "`example: true`, and give it with --tariffs (rules also runs without "
                "the monthly job with --no-allocation)",
                "复制电价文件，填入电费单上的实际价格，"
                "删掉 `example: true`，再用 --tariffs 指定（rules 也可加 --no-allocation "
                "不跑每月分摊）",
            ),
            where="--tariffs",
            code="example_prices",
        )
    return Problem(
        Text(
            f"tariff {tariff_id!r} holds EXAMPLE prices: `rules` and `report --schedule` "
            "refuse to bill with them, and `report` marks its exports as example prices",
            f"电价 {tariff_id!r} 是示例价格：`rules` 和 `report --schedule` 不会按它出账，"
            "`report` 导出的文件会标注“示例价格”",
        ),
        Text(
            "copy the tariff file, put in the prices on your utility bills, remove "
            "`example: true`, and give it with --tariffs",
            "复制电价文件，填入电费单上的实际价格，删掉 `example: true`，再用 --tariffs 指定",
        ),
        where="--tariffs",
        severity=Severity.WARNING,
        code="example_prices",
    )
