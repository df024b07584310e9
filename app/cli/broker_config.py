"""`waystation broker-config`: Mosquitto's password, ACL and accounts files from the registry."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.checks import Plan
from app.cli.common import (
    EXIT_OK,
    Subcommands,
    checked,
    connection_options,
    positive,
    settings,
)


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "broker-config",
        parents=[connection_options(top=False)],
        help="Mosquitto password and ACL files from the registry",
    )
    p.add_argument("--out", type=Path, default=Path("broker"), help="directory (default ./broker)")
    p.add_argument(
        "--broker-user",
        default="mosquitto",
        help="the user Mosquitto runs as, who must read passwd and acl: a name or a uid "
        "(1883 in the eclipse-mosquitto image); default mosquitto",
    )
    p.add_argument(
        "--ingest-workers",
        type=positive,
        default=1,
        help="accounts waystation-ingest-1..N, one per ingest worker (default 1)",
    )
    p.add_argument(
        "--rules-workers",
        type=positive,
        default=1,
        help="accounts waystation-rules-1..N, one per rules service (default 1)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from app.brokerconfig import hand_to_broker, write_broker_config

    s = settings(args)
    registry = checked(Plan(registry=Path(s.registry))).registry
    assert registry is not None  # noqa: S101 - checked raised otherwise
    files = write_broker_config(
        registry, args.out, ingest_workers=args.ingest_workers, rules_workers=args.rules_workers
    )
    print(f"{files.passwd}, {files.acl}: {registry.device_count} devices and the service accounts")
    print(f"{files.credentials}: passwords (secret), {len(files.new_accounts)} new")
    if files.removed_accounts:
        print(f"accounts no longer in the registry: {', '.join(files.removed_accounts)}")
    print(hand_to_broker(files, args.broker_user))
    print(
        f"{files.mosquitto_conf}: for Mosquitto's include_dir (password_file, acl_file, "
        "allow_anonymous false, use_username_as_clientid true: each account's user name "
        "is its client id)"
    )
    return EXIT_OK
