"""`waystation dashboards build|push`: write the dashboards' JSON, or push them to Grafana."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, Subcommands
from waystation import redact

if TYPE_CHECKING:
    from dashboards.boards import BoardOptions


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser("dashboards", help="Grafana dashboards: write the JSON, or push to Grafana")
    action = p.add_subparsers(dest="action", required=True)
    build = action.add_parser("build", help="write the dashboards' JSON files")
    build.add_argument(
        "--out",
        type=Path,
        default=Path("dashboards/json"),
        help="directory (default ./dashboards/json, under the working directory)",
    )
    push = action.add_parser("push", help="create or update the dashboards in a running Grafana")
    for a in (build, push):
        a.add_argument(
            "--timezone",
            default="Asia/Shanghai",
            help="the registry's time zone: days and months of the panels begin at its midnight "
            "(default Asia/Shanghai)",
        )
        a.add_argument(
            "--basemap",
            default="gaode",
            help="the district map's tiles: gaode (AutoNavi, GCJ-02, loads in mainland China; the "
            "default), osm or default (WGS-84), or a URL with {x} {y} {z} (give --basemap-crs)",
        )
        a.add_argument(
            "--basemap-crs",
            choices=["wgs84", "gcj02"],
            default="wgs84",
            help="the coordinate system of a --basemap URL's tiles (default wgs84)",
        )
    push.add_argument(
        "--grafana",
        default=os.environ.get("WAYSTATION_GRAFANA", "http://127.0.0.1:3000"),
        help="Grafana's URL [$WAYSTATION_GRAFANA; default http://127.0.0.1:3000]",
    )
    push.add_argument(
        "--grafana-token",
        default=os.environ.get("WAYSTATION_GRAFANA_TOKEN"),
        help="service-account token, or user:password [$WAYSTATION_GRAFANA_TOKEN]",
    )
    push.add_argument("--folder", default="Waystation", help="folder (created if missing)")
    push.add_argument("--datasource", help="uid of the InfluxDB data source to select")
    push.add_argument("--overwrite", action="store_true", help="replace dashboards that exist")
    push.add_argument(
        "--dashboard", action="append", dest="names", help="only this one; repeatable"
    )
    return p


def run(args: argparse.Namespace) -> int:
    from dashboards.boards import DASHBOARDS  # server extra
    from dashboards.generate import generate
    from dashboards.push import PushError, push

    opts = _options(args)
    if opts is None:
        return EXIT_CONFIG
    if args.action == "build":
        for path in generate(args.out, opts):
            print(path)
        return EXIT_OK
    unknown = sorted(set(args.names or ()) - set(DASHBOARDS))
    if unknown:
        print(f"waystation dashboards: no dashboard {', '.join(unknown)} "
              f"(have {', '.join(DASHBOARDS)})", file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    token = args.grafana_token
    credential: str | tuple[str, str] | None = (
        tuple(token.split(":", 1)) if token and ":" in token else token
    )
    redact.register_secret(token.partition(":")[2] if token and ":" in token else token)
    try:
        urls = push(args.grafana, credential, folder=args.folder, datasource_uid=args.datasource,
                    overwrite=args.overwrite, names=args.names, opts=opts)  # fmt: skip
    except PushError as exc:
        print(redact.redact(f"waystation dashboards push: {exc}"), file=sys.stderr)
        return EXIT_FAILURE
    for url in urls:
        print(url)
    return EXIT_OK


def _options(args: argparse.Namespace) -> BoardOptions | None:
    """The board options from the flags; None (said on stderr) when they are not usable."""
    from dashboards.basemaps import BASEMAPS, custom
    from dashboards.boards import BoardOptions
    from waystation.registry import check_timezone

    try:
        zone = check_timezone(args.timezone)
    except ValueError as exc:
        print(f"waystation dashboards: --timezone: {exc}", file=sys.stderr)
        return None
    if args.basemap in BASEMAPS:
        return BoardOptions(zone, BASEMAPS[args.basemap])
    if all(f"{{{c}}}" in args.basemap for c in "xyz"):
        return BoardOptions(zone, custom(args.basemap, args.basemap_crs))
    print(
        f"waystation dashboards: --basemap {args.basemap!r} is neither {', '.join(BASEMAPS)} "
        "nor a tile URL with {x}, {y} and {z} | 底图应为 "
        f"{'、'.join(BASEMAPS)} 之一，或含 {{x}}{{y}}{{z}} 的瓦片地址",
        file=sys.stderr,
    )
    return None
