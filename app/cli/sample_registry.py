"""`waystation sample-registry`: print an example `stations.yaml` (the demo's district)."""

from __future__ import annotations

import argparse
from importlib.resources import files

from app.cli.common import EXIT_OK, Subcommands


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    return sub.add_parser("sample-registry", help="print an example stations.yaml")


def run(_args: argparse.Namespace) -> int:
    print(files("app").joinpath("data/demo-stations.yaml").read_text(encoding="utf-8"), end="")
    return EXIT_OK
