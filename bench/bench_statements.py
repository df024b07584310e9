"""The month's files for a district: CSV, workbook and the PDF statements, timed.

Run: ./dev bench bench_statements [--stations 200] [--stations-per-party 4]
                                  [--language zh] [--time-limit 600]

Allocates October 2026 for N stations from steady hourly readings in memory
(no InfluxDB: the report's queries are bench_allocation's business), one
enterprise party per --stations-per-party stations plus the union, then
times write_csv, write_xlsx and write_pdfs (a statement per party, the CJK
font cut down once) and prints each one's seconds and output size, the
statements' pages, and the process's peak RSS. The files go to a temporary
directory that is deleted at the end. Past --time-limit seconds it stops.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from pypdf import PdfReader

from rules.allocation.export import write_csv, write_xlsx
from rules.allocation.pdf import find_font, write_pdfs
from rules.allocation.report import MonthReport
from rules.allocation.tariff import shipped_tariffs
from tests.allocation_helpers import allocate, station_entry
from tests.export_helpers import OCT
from waystation.registry import parse_registry

MODELS = ("enterprise_incubated", "department_guided", "community_integrated")


def district(stations: int, per_party: int) -> dict[str, Any]:
    parties: dict[str, dict[str, str]] = {"union": {"name": "达川区总工会", "type": "union"}}
    entries = {}
    for i in range(stations):
        party = f"ent-{i // per_party:04d}"
        parties[party] = {"name": f"达州第{i // per_party + 1}号服务有限公司", "type": "enterprise"}
        entries[f"st-{i:04d}"] = station_entry(f"st-{i:04d}", MODELS[i % len(MODELS)],
                                               operator=party)  # fmt: skip
    return {"version": 1, "tariff": "sichuan-general-commercial", "parties": parties,
            "stations": entries}  # fmt: skip


def timed(what: str, run: Callable[[], list[Path]]) -> list[Path]:
    start = time.perf_counter()
    paths = run()
    took = time.perf_counter() - start
    size = sum(p.stat().st_size for p in paths)
    print(f"{what:<12} {took:8.2f} s  {len(paths):5d} file(s)  {size / 1e6:8.2f} MB", flush=True)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--stations-per-party", type=int, default=4)
    parser.add_argument("--language", choices=["zh", "en"], default="zh")
    parser.add_argument("--time-limit", type=float, default=600)
    args = parser.parse_args()

    def give_up(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"past --time-limit {args.time_limit:.0f} s")

    signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, args.time_limit)
    out = Path(tempfile.mkdtemp(prefix="bench-statements-"))
    try:
        registry = parse_registry(district(args.stations, args.stations_per_party))
        start = time.perf_counter()
        results = [allocate(registry, s, OCT) for s in sorted(registry.stations)]
        print(f"{'allocate':<12} {time.perf_counter() - start:8.2f} s  "
              f"{args.stations} stations, {len(registry.parties)} parties")  # fmt: skip
        tariff = shipped_tariffs()["sichuan-general-commercial"]
        report = MonthReport(OCT, results, dict.fromkeys(registry.stations, tariff),
                             language=args.language)  # fmt: skip
        timed("csv", lambda: [write_csv(report, out / "m.csv")])
        timed("xlsx", lambda: [write_xlsx(report, out / "m.xlsx")])
        font = find_font()
        pdfs = timed("pdf", lambda: write_pdfs(report, out / "pdf", "m", font, mark=True))
        pages = [len(PdfReader(p).pages) for p in pdfs]
        print(f"statements   {len(pdfs)} parties, {sum(pages)} pages (most {max(pages)})")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS     {rss:.0f} MB")
    except TimeoutError as exc:
        print(f"bench_statements: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
