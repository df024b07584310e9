"""Start-up cost of a large registry, and what one repeated mistake prints.

Run: ./dev bench bench_config [--stations 2000 10000] [--time-limit 300]

For each size, a generated registry (six devices a station: main electricity
and water meters, a dispenser, a locker, a door counter, the gateway) in a
temporary directory, then, each in a fresh process, as a service would start:

- parse: the YAML into a document (keys' lines and columns, duplicate keys);
- parse + validate: the registry model from the file (parsed again);
- check-config: the whole command, wall time and peak RSS;
- the same registry with one key misspelt under every device (`intervall`):
  the command's time and how many lines it prints.

The temporary directory is deleted at the end, also when a step fails or the
time limit is reached.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEVICES = (
    ("meter-main", "{kind: meter, utility: electricity, role: main, interval: 15m}"),
    ("water-main", "{kind: meter, utility: water, role: main, interval: 1h}"),
    ("disp-01", "{kind: water_dispenser, interval: 60s, timeout: 5m}"),
    ("locker-01", "{kind: charging_locker}"),
    ("door-01", "{kind: door_counter}"),
    ("gw-01", "{kind: gateway}"),
)

# Timed in a child process, so each figure is a cold start's (imports excluded). CPU time
# beside wall time: on a box shared with other work, the CPU time is what compares.
CHILD = """
import json, sys, time
from waystation.configfile import load_document
from waystation.registry import load_registry
path = sys.argv[1]
w0, c0 = time.perf_counter(), time.process_time()
load_document(path)
w1, c1 = time.perf_counter(), time.process_time()
load_registry(path)
w2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"parse": [w1 - w0, c1 - c0], "load": [w2 - w1, c2 - c1]}))
"""


def write_registry(path: Path, stations: int, *, typo: bool = False) -> int:
    """The registry; returns its size in lines."""
    lines = [
        "version: 1",
        "timezone: Asia/Shanghai",
        "tariff: sichuan-general-commercial",
        "parties:",
        "  dachuan-union: {name: 达川区总工会, type: union}",
        "  xiaoge: {name: 小哥咖啡, type: enterprise}",
        "stations:",
    ]
    for n in range(stations):
        sid = f"st-{n:05d}"
        lines += [
            f"  {sid}:",
            f"    name: 驿站 {n}",
            "    model: enterprise_incubated",
            "    operator: xiaoge",
            '    opening_hours: "07:00-22:00"',
            f"    location: {{lat: 31.{n % 1000:03d}, lon: 107.{n % 997:03d}}}",
            "    devices:",
        ]
        for name, spec in DEVICES:
            text = spec.replace("{kind", "{intervall: 1m, kind") if typo else spec
            lines.append(f"      {sid}-{name}: {text}")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return len(lines)


def run_child(
    argv: list[str], timeout_s: float
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """The finished child, its wall time and its CPU time (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return done, wall, cpu


def peak_rss_mb() -> float:
    """The largest RSS of any child waited for so far (the sizes run smallest first)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measure(directory: Path, stations: int, deadline: float, *, typo: bool = True) -> None:
    path = directory / f"stations-{stations}.yaml"
    lines = write_registry(path, stations)
    left = max(deadline - time.monotonic(), 1.0)
    done, _, _ = run_child([sys.executable, "-c", CHILD, str(path)], left)
    if done.returncode != 0:
        raise SystemExit(f"loading failed:\n{done.stderr[-2000:]}")
    timed = json.loads(done.stdout)
    parse, load = timed["parse"], timed["load"]
    waystation = [sys.executable, "-m", "app.cli", "check-config", "--registry", str(path)]
    done, wall, cpu = run_child(waystation, max(deadline - time.monotonic(), 1.0))
    rss = peak_rss_mb()
    verdict = "OK" if done.returncode == 0 else f"exit {done.returncode}"
    print(
        f"{stations:>6,} stations ({stations * len(DEVICES):,} devices, {lines:,} lines), "
        "wall / CPU seconds:\n"
        f"{'':>8}parse {parse[0]:.2f} / {parse[1]:.2f}; parse + validate "
        f"{load[0]:.2f} / {load[1]:.2f}; "
        f"check-config {wall:.2f} / {cpu:.2f} ({verdict}), peak RSS {rss:.0f} MB"
    )
    if not typo:
        return
    typo_path = directory / f"typo-{stations}.yaml"
    write_registry(typo_path, stations, typo=True)
    waystation[-1] = str(typo_path)
    done, wall, cpu = run_child(waystation, max(deadline - time.monotonic(), 1.0))
    printed = (done.stdout + done.stderr).count("\n")
    print(
        f"{'':>8}`intervall` under every device: check-config {wall:.2f} / {cpu:.2f}, "
        f"exit {done.returncode}, {printed:,} lines printed"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--no-typo", action="store_true", help="skip the repeated-mistake run")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds, in all")
    args = parser.parse_args()
    deadline = time.monotonic() + args.time_limit
    # Stopped (kill, Ctrl-C): the temporary directory goes all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    directory = Path(tempfile.mkdtemp(prefix="bench-config-"))
    try:
        with open("/proc/loadavg", encoding="ascii") as f:  # noqa: PTH123
            print(f"load average at the start: {' '.join(f.read().split()[:3])}")
        for stations in sorted(args.stations):
            measure(directory, stations, deadline, typo=not args.no_typo)
    except subprocess.TimeoutExpired:
        print(f"gave up: past the time limit of {args.time_limit:.0f} s")
        sys.exit(1)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
