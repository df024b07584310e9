"""`waystation demo`: a simulated district's whole story through the real pipeline."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from app.cli.common import EXIT_OK, Subcommands, duration


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="a simulated district's whole story through the real pipeline")
    p.add_argument("--log-level", default="ERROR", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--duration",
        type=duration,
        default=timedelta(seconds=10),
        help="how long to stay live after the faults (default 10s)",
    )
    p.add_argument(
        "--interval",
        type=duration,
        help="reading interval of every simulated device live (default 1s)",
    )
    p.add_argument(
        "--short", action="store_true", help="coarser history and shorter waits (the tests' mode)"
    )
    p.add_argument(
        "--workdir", type=Path, help="keep servers' data here (default: a temp dir, removed)"
    )
    return p


def run(args: argparse.Namespace) -> int:
    from app.demo import run_demo  # server extra

    run_demo(duration=args.duration, interval=args.interval, workdir=args.workdir, short=args.short)
    return EXIT_OK
