"""Monthly report: allocation and service-level scorecard time and memory for a district's month.

Run: ./dev bench bench_allocation [--stations 1000] [--interval 60] [--meter-interval S]
                                  [--repeat 1] [--workdir DIR [--skip-load | --load-only]]
                                  [--time-limit 3600]

Loads N stations x 6 devices (main electricity and water meters, a dispenser,
a locker, a door counter, a gateway) of readings every --interval seconds (the
main meters every --meter-interval, if given; each device registered so) for
October 2026 plus a day either side straight into a local InfluxDB (line
protocol, two loader processes; every reading with its `seq`, as ingest
writes it, the dispensers with their temperature, the lockers with their
faulty slots, and the gateways' own readings; one station in 50 has a cold
dispenser for an hour and a locker fault, and another in 50 a door counter
and a gateway silent for two hours, so the scorecard reads those reading by
reading), then times `run_report` (the queries, the register
arithmetic and the sharing), the scorecard (`service_report`, with the
allocation's usage beside it) and the
CSV + XLSX export --repeat times, and prints the report process's peak RSS and the load average (the
figures mean little on a machine busy with other work). Without --workdir
the data goes to a temporary directory that is deleted at the end; with it
the data is kept, and a later run with --skip-load times the report alone
(--load-only loads it and stops).
Past --time-limit seconds the benchmark stops InfluxDB, cleans up and fails.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from app.localservers import InfluxServer
from app.scorecard import registers_of
from rules.allocation.export import export_paths, write_csv, write_xlsx
from rules.allocation.registers import HOUR_MS
from rules.allocation.report import month_window, run_report
from rules.allocation.tariff import shipped_tariffs
from rules.servicelevel.command import ScorecardJob
from rules.servicelevel.definitions import Definitions
from tests.allocation_helpers import PARTIES
from tests.helpers import station_devices
from waystation.registry import Registry, parse_registry
from waystation.store import InfluxStore

MONTH = date(2026, 10, 1)
TROUBLE_START = int(datetime(2026, 10, 15, 12, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)
DATABASE = "bench_allocation"
BATCH = 20_000
# (device suffix, measurement, field, growth per minute, format)
REGISTERS = [
    ("meter", "meter", "energy_kwh_total", 0.05, "{:.3f}"),
    ("water", "meter", "water_m3_total", 0.002, "{:.4f}"),
    ("disp", "water_dispenser", "energy_kwh_total", 0.01, "{:.4f}"),
    ("locker", "charging_locker", "energy_kwh_total", 0.005, "{:.4f}"),
    ("door", "door_counter", "in_total", 1.0, "{:.0f}i"),
]


def intervals(every_s: int, meters_s: int | None = None) -> dict[str, int]:
    """Seconds between readings by device suffix: the meters' may differ from the rest."""
    out = {suffix: every_s for suffix, *_ in REGISTERS} | {"gw": every_s}
    if meters_s is not None:
        out |= {"meter": meters_s, "water": meters_s}
    return out


def registry(stations: int, every_s: dict[str, int] | None = None) -> Registry:
    """The district, every device registered with the interval its readings come at."""
    every_s = every_s or intervals(60)
    models = ["enterprise_incubated", "department_guided", "industry_managed"]
    return parse_registry({
        "version": 1,
        "tariff": "sichuan-general-commercial",
        "parties": PARTIES,
        "stations": {
            f"st{n:05d}": {
                "name": f"驿站 {n}",
                "model": models[n % 3],
                "operator": "sanitation-union" if n % 3 == 2 else "xiaoge",
                "devices": {
                    device: spec | {"interval": f"{every_s[device.rsplit('-', 1)[1]]}s"}
                    for device, spec in station_devices(f"st{n:05d}").items()
                },
            }
            for n in range(stations)
        },
    })  # fmt: skip


def _post(url: str, body: bytes) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=300)
    query = urlencode({"db": DATABASE, "precision": "ms"})
    conn.request("POST", f"/write?{query}", body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status != 204:
        raise RuntimeError(f"write failed {resp.status}: {data[:300]!r}")


def _load(url: str, stations: list[int], every_s: dict[str, int]) -> int:
    window = month_window(MONTH, ZoneInfo("Asia/Shanghai"))
    start, end = window.start_ms - 24 * HOUR_MS, window.end_ms + 24 * HOUR_MS
    sent = 0
    lines: list[str] = []
    for n in stations:
        st = f"st{n:05d}"
        for suffix, measurement, field, per_min, fmt in REGISTERS:
            head = f"{measurement},device={st}-{suffix},station={st} {field}="
            base = 1000.0 + n
            per_step = per_min * every_s[suffix] / 60
            for k, t in enumerate(range(start, end, every_s[suffix] * 1000)):
                if _silent(n, suffix, t):
                    continue
                # Monotone with an uneven step, so the data does not compress unrealistically.
                value = base + per_step * (k + (k * 7919 % 13) / 100)
                lines.append(f"{head}{fmt.format(value)},seq={k}i{_extra(n, suffix, t)} {t}")
                if len(lines) >= BATCH:
                    _post(url, "\n".join(lines).encode())
                    sent += len(lines)
                    lines.clear()
        gateway = f"gateway,device={st}-gw,station={st} seq="
        for k, t in enumerate(range(start, end, every_s["gw"] * 1000)):
            if not _silent(n, "gw", t):
                lines.append(f"{gateway}{k}i {t}")
        if len(lines) >= BATCH:
            _post(url, "\n".join(lines).encode())
            sent += len(lines)
            lines.clear()
    if lines:
        _post(url, "\n".join(lines).encode())
        sent += len(lines)
    return sent


def _silent(n: int, suffix: str, t: int) -> bool:
    """One station in 50 loses its door counter and its gateway for two hours."""
    return (
        n % 50 == 25
        and suffix in ("door", "gw")
        and TROUBLE_START <= t < TROUBLE_START + 2 * HOUR_MS
    )


def _extra(n: int, suffix: str, t: int) -> str:
    """The scorecard's fields: hot (or for an hour, at one station in 50, cold and faulty)."""
    trouble = n % 50 == 0 and TROUBLE_START <= t < TROUBLE_START + HOUR_MS
    if suffix == "disp":
        return ',temp_c=61.5,fault="E3"' if trouble else ",temp_c=92.5"
    if suffix == "locker":
        return ",fault_slots=2i" if trouble else ",fault_slots=0i"
    return ""


def load(url: str, stations: int, every_s: dict[str, int], processes: int = 2) -> None:
    t0 = time.monotonic()
    chunks = [list(range(i, stations, processes)) for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        counts = pool.starmap(_load, [(url, chunk, every_s) for chunk in chunks])
    took = time.monotonic() - t0
    total = sum(counts)
    print(f"loaded {total:,} points in {took:.0f} s ({total / took:,.0f} points/s)")


def _loadavg() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _over_time(limit: int) -> None:
    def expired(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"bench_allocation: over its time limit of {limit} s")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)


def run_once(reg: Registry, store: InfluxStore, workdir: Path) -> tuple[float, float, float]:
    """One report and its export: (report s, of which queries s, export s)."""
    steps: list[tuple[float, str]] = []
    t0 = time.monotonic()
    report = run_report(
        reg,
        shipped_tariffs(),
        store,
        MONTH,
        now=datetime(2026, 11, 2, tzinfo=UTC),
        progress=lambda _done, _total, what: steps.append((time.monotonic(), what)),
    )
    fetched = next(t for t, what in steps if what == "allocating") - t0
    took = time.monotonic() - t0
    t_sc = time.monotonic()
    scorecard = ScorecardJob(reg, store, workdir, Definitions(), write_influx=False,
                             clock=lambda: datetime(2026, 11, 2, tzinfo=UTC))  # fmt: skip
    add_sheet = scorecard.run(MONTH, usage=registers_of(report))
    scored = time.monotonic() - t_sc
    csv_path, xlsx_path = export_paths(workdir, report)
    t1 = time.monotonic()
    write_csv(report, csv_path)
    write_xlsx(report, xlsx_path, extra_sheets=[add_sheet])
    exported = time.monotonic() - t1
    down = sum(r.outages for r in scorecard.last.stations) if scorecard.last else 0
    print(
        f"report: {took + scored + exported:.1f} s = allocation {took:.1f} s (queries "
        f"{fetched:.1f} s, arithmetic and shares {took - fetched:.1f} s) + scorecard "
        f"{scored:.1f} s ({down} outages found) + export {exported:.1f} s; "
        f"total ¥{report.total_cost:,.2f}; {_loadavg()}",
        flush=True,
    )
    return took + scored, fetched, exported


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--interval", type=int, default=60, help="seconds between readings")
    ap.add_argument(
        "--meter-interval", type=int, help="seconds between the main meters' readings, if other"
    )
    ap.add_argument("--repeat", type=int, default=1, help="reports to time on the same data")
    ap.add_argument("--workdir", type=Path, help="keep InfluxDB's data here")
    ap.add_argument("--skip-load", action="store_true", help="reuse the data in --workdir")
    ap.add_argument("--load-only", action="store_true", help="load --workdir and stop")
    ap.add_argument("--time-limit", type=int, default=3600, help="seconds before giving up")
    args = ap.parse_args()
    if args.skip_load and not args.workdir:
        ap.error("--skip-load needs the --workdir of an earlier run")
    if args.load_only and (args.skip_load or not args.workdir):
        ap.error("--load-only needs a --workdir to keep the data in, and no --skip-load")

    _over_time(args.time_limit)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-allocation-"))
    server = InfluxServer(workdir / "influxdb")
    try:
        server.start()
        store = InfluxStore(server.url, DATABASE)
        store.create_database()
        every_s = intervals(args.interval, args.meter_interval)
        reg = registry(args.stations, every_s)
        if not args.skip_load:
            load(server.url, args.stations, every_s)
        if args.load_only:
            return
        points = args.stations * sum(33 * 24 * 3600 // every_s[s] for s, *_ in REGISTERS)
        meters = f" (main meters every {args.meter_interval} s)" if args.meter_interval else ""
        print(
            f"{args.stations} stations x 6 devices, readings every {args.interval} s{meters}, "
            f"{MONTH:%Y-%m}: about {points:,} register points; {_loadavg()}",
            flush=True,
        )
        runs = [run_once(reg, store, workdir) for _ in range(args.repeat)]
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if len(runs) > 1:
            took = sorted(r[0] for r in runs)
            print(
                f"report over {len(runs)} runs: best {took[0]:.1f} s, "
                f"median {statistics.median(took):.1f} s, worst {took[-1]:.1f} s"
            )
        print(f"peak RSS of the report process: {rss_mb:.0f} MB")
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    finally:
        signal.alarm(0)
        server.stop()
        if args.workdir is None:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
