"""`waystation report`: a month's allocation by party and service levels (CSV, XLSX, InfluxDB)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.checks import Plan
from app.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RULES_CONFIG_ENV,
    Subcommands,
    checked,
    connection_options,
    env_path,
    out_dir,
    setting_origins,
    settings,
    store,
    tariff_paths,
    tariffs_option,
    wait_for_signal,
)


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        parents=[connection_options(top=False)],
        help="monthly utility allocation by party and service levels: CSV + XLSX, and InfluxDB "
        "`allocation`, `service_level`",
    )
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--month", help="the month to allocate, like 2026-10")
    when.add_argument(
        "--schedule",
        action="store_true",
        help="keep running and allocate the month before on the 1st of each month at 02:00",
    )
    p.add_argument(
        "--out", type=out_dir, default=Path("reports"), help="directory (default ./reports)"
    )
    tariffs_option(p)
    p.add_argument(
        "--allow-example-prices",
        action="store_true",
        help="bill with a tariff marked as example without the warning and the exports' mark "
        "(never for --schedule)",
    )
    p.add_argument(
        "--station",
        action="append",
        dest="stations",
        help="only this station; repeatable (the files' names then carry the stations' ids)",
    )
    p.add_argument(
        "--no-influx",
        action="store_true",
        help="do not write the `allocation` and `service_level` measurements",
    )
    p.add_argument(
        "--rules-config",
        type=Path,
        help=f"the rules config, for the scorecard's thresholds [${RULES_CONFIG_ENV}]",
    )
    p.add_argument(
        "--no-service-levels",
        action="store_true",
        help="the bill alone: no service-level scorecard (it reads every stored reading, so on a "
        "large district it takes longer than the allocation)",
    )
    p.add_argument(
        "--pdf",
        action="store_true",
        help="also each party's statement (对账单) as an A4 PDF, ready to send",
    )
    p.add_argument(
        "--pdf-font",
        type=Path,
        help="a CJK .ttf/.ttc for the PDFs (default: the first of Debian's fonts-wqy-microhei, "
        "fonts-wqy-zenhei, fonts-noto-cjk found)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    # Server extra: rich, openpyxl, APScheduler.
    from rich.console import Console

    from app.scorecard import scorecard_job
    from rules.allocation.command import ReportJob, print_summary, run_scheduled
    from rules.allocation.labels import label
    from rules.allocation.pdf import FontMissing
    from rules.allocation.report import AllocationError, NoReadings, example_tariffs, parse_month
    from rules.servicelevel.command import print_scorecard
    from waystation.store import StoreError

    s = settings(args)
    result = checked(
        Plan(
            registry=Path(s.registry),
            rules_config=env_path(args.rules_config, RULES_CONFIG_ENV),
            tariffs=tariff_paths(args),
            allocation=True,
            scheduled_billing=args.schedule,
            influx=s.influx,
            origins=setting_origins(args),
        ),
        said_elsewhere=frozenset({"example_prices"}),
    )
    registry, tariffs = result.registry, result.tariffs
    assert registry is not None  # noqa: S101 - checked raised otherwise
    if tariffs is None:  # a registry without parties: run_report says what to add
        tariffs = {}
    console = Console(stderr=True)
    influx = store(s)
    scorecard = scorecard_job(registry, influx, args.out, result.rules, stations=args.stations,
                              write_influx=not args.no_influx, console=console)  # fmt: skip
    job = ReportJob(registry, tariffs, influx, args.out, args.stations, not args.no_influx,
                    console, allow_example_prices=args.allow_example_prices,
                    extras=[] if args.no_service_levels else [scorecard])  # fmt: skip
    examples = (
        [] if args.allow_example_prices else example_tariffs(registry, tariffs, args.stations)
    )
    try:
        if args.schedule:
            run_scheduled(job, wait_for_signal)
            return EXIT_OK
        month = parse_month(args.month)
        font = _pdf_font(args)
        if examples:
            _warn_example_prices(examples)
        report, csv_path, xlsx_path = job.run(month)
        pdfs = job.write_pdfs(report, font) if font is not None else []
    except KeyboardInterrupt:
        _say_interrupted(job.writing)
        return EXIT_INTERRUPTED
    except (FontMissing, NoReadings, AllocationError, StoreError) as exc:
        # No readings and InfluxDB's errors may pass with time; the others need a fix.
        may_pass = isinstance(exc, NoReadings | StoreError)
        where = "InfluxDB: " if isinstance(exc, StoreError) else ""
        print(f"waystation report: {where}{exc}", file=sys.stderr)
        return EXIT_FAILURE if may_pass else EXIT_CONFIG
    print_summary(Console(), report, registry)
    print_scorecard(Console(), scorecard.job.last, registry.language)
    print(f"{label(report.language, 'written')}: {csv_path}, {xlsx_path}")
    if scorecard.job.last_path is not None:
        print(f"{label(report.language, 'written')}: {scorecard.job.last_path}")
    for path in pdfs:
        print(f"{label(report.language, 'written')}: {path}")
    if examples:
        _warn_example_prices(examples)
    return EXIT_OK


def _say_interrupted(writing: Path | None) -> None:
    if writing is None:
        print("waystation report: 已中断，未写任何文件 | interrupted, nothing written",
              file=sys.stderr)  # fmt: skip
    else:
        print(f"waystation report: 写 {writing} 时中断，该文件可能不完整，请重新运行 | "
              f"interrupted while writing {writing}: it may be incomplete, run the "
              "report again", file=sys.stderr)  # fmt: skip


def _warn_example_prices(tariffs: list[str]) -> None:
    names = ", ".join(tariffs)
    print(
        f"警告 WARNING: 电价 {names} 是示例价格，本报表不是正式账单；导出文件每行都标注“示例价格”，"
        "也不写入 InfluxDB。\n"
        f"  tariff {names} holds EXAMPLE prices: this is not a bill. Every exported row says "
        "so and nothing goes to InfluxDB.\n"
        "  修正 fix: --tariffs FILE with the prices on your utility bills (copy the shipped "
        "file, remove `example: true`), or --allow-example-prices to accept them",
        file=sys.stderr,
    )


def _pdf_font(args: argparse.Namespace) -> Path | None:
    """The font the PDFs need, found before the month is made (None: no --pdf)."""
    from rules.allocation.pdf import find_font

    return find_font(args.pdf_font) if args.pdf else None
