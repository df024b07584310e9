"""`waystation influx-setup`: prepare InfluxDB 2.x (bucket, retention, DBRP mapping, tokens)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from app.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Subcommands,
    connection_options,
    duration,
    settings,
)


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "influx-setup",
        parents=[connection_options(top=False)],
        help="prepare InfluxDB 2.x: bucket, retention, DBRP mapping, least-privilege tokens",
    )
    p.add_argument("--org", default="waystation")
    p.add_argument("--bucket", default="waystation")
    p.add_argument("--retention", type=duration, default=timedelta(days=800))
    p.add_argument("--out", type=Path, default=Path("influx-tokens"), help="token files here")
    p.add_argument("--file-mode", default="600", help="octal mode of the token files (default 600)")
    return p


def run(args: argparse.Namespace) -> int:
    from app.influxsetup import InfluxSetup, SetupError, setup_influxdb  # server extra

    s = settings(args)
    token = s.required("influx_token")  # the admin (operator) token
    setup = InfluxSetup(s.influx, token, args.org, args.bucket,
                        s.database, args.retention, args.out,
                        int(args.file_mode, 8))  # fmt: skip
    try:
        for line in setup_influxdb(setup):
            print(line)
    except (SetupError, OSError) as exc:
        print(f"waystation influx-setup: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
