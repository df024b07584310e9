"""`waystation silence add|list|remove`: silence a station's notifications for maintenance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.checks import Plan
from app.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    Subcommands,
    checked,
    connection_options,
    settings,
    state_option,
    state_path,
)


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    # `silence --state X add` and `silence add --state X` both work.
    common = connection_options(top=False)
    state = argparse.ArgumentParser(add_help=False)
    state_option(state, "the rules service's state file")
    state.add_argument(
        "--create-state", action="store_true", default=argparse.SUPPRESS,
        help="start a new state file if there is none (default: refuse)",
    )  # fmt: skip
    p = sub.add_parser(
        "silence",
        parents=[common, state],
        help="silence a station's alerts for a while (maintenance)",
    )
    silence = p.add_subparsers(dest="action", required=True)
    add = silence.add_parser("add", parents=[common, state], help="silence a station until a time")
    add.add_argument("--station", required=True, help="a station id of the registry")
    add.add_argument(
        "--until",
        required=True,
        help="a duration (2h, counted from --from if given, else from now) or a time "
        "(2026-11-25T08:00+08:00; without a zone, the station's)",
    )
    add.add_argument("--from", dest="start", help="start later, at this time (default now)")
    add.add_argument("--force", action="store_true", help="allow a silence longer than 30 days")
    add.add_argument("--reason", default="", help="shown in `silence list` (default: maintenance)")
    silence.add_parser("list", parents=[common, state], help="silences not yet over")
    remove = silence.add_parser("remove", parents=[common, state], help="end a silence")
    remove.add_argument("id", type=int)
    return p


def run(args: argparse.Namespace) -> int:
    from rules.outage.silences import (  # server extra
        WORDS,
        add_silence,
        list_silences,
        remove_silence,
    )

    registry = checked(Plan(registry=Path(settings(args).registry))).registry
    assert registry is not None  # noqa: S101 - checked raised otherwise
    state = state_path(args)
    try:
        if args.action == "add":
            print(add_silence(state, args.station, args.until, registry=registry,
                              start=args.start, reason=args.reason,
                              create=getattr(args, "create_state", False),
                              force=args.force))  # fmt: skip
        elif args.action == "remove":
            found = remove_silence(state, args.id)
            print(WORDS[registry.language]["removed" if found else "missing"].format(id=args.id))
            return EXIT_OK if found else EXIT_FAILURE
        else:
            for line in list_silences(state, registry):
                print(line)
    except ValueError as exc:
        print(f"waystation silence: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK
