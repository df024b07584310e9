"""`waystation influx-setup`: prepare an InfluxDB 2.x server for Waystation (influxdb-client).

Idempotent: the bucket (with its retention) and the DBRP mapping that lets
InfluxQL address the bucket as a database are created when missing and left
alone when present; each run issues fresh least-privilege tokens:

    ingest-write       write the bucket (ingest)
    rules-readwrite    read and write it (rules: warm-up, alerts; the monthly report)
    grafana-read       read it (Grafana's data source)

Tokens are written one per file, never printed. InfluxDB 1.x needs none of
this (`waystation ingest` creates its database); InfluxDB 3 has its own
tokens and no DBRP mappings.

This module was written against influxdb-client's API and is not exercised
here: there is no InfluxDB 2.x on the development machines (see README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.domain.bucket_retention_rules import BucketRetentionRules
from influxdb_client.domain.dbrp_create import DBRPCreate
from influxdb_client.domain.permission import Permission
from influxdb_client.domain.permission_resource import PermissionResource
from influxdb_client.rest import ApiException
from influxdb_client.service.dbr_ps_service import DBRPsService

__all__ = ["InfluxSetup", "SetupError", "setup_influxdb"]

TOKENS = {
    "ingest-write": ("write",),
    "rules-readwrite": ("read", "write"),
    "grafana-read": ("read",),
}


class SetupError(Exception):
    """The server refused a step; the message names it."""


@dataclass(frozen=True)
class InfluxSetup:
    url: str
    admin_token: str
    org: str = "waystation"
    bucket: str = "waystation"
    database: str = "waystation"
    retention: timedelta = timedelta(days=800)
    out: Path = Path("influx-tokens")
    file_mode: int = 0o600


def setup_influxdb(s: InfluxSetup) -> list[str]:
    """Run every step; the lines to report (names and ids, no secrets)."""
    done = []
    with InfluxDBClient(url=s.url, token=s.admin_token, org=s.org) as client:
        try:
            orgs = client.organizations_api().find_organizations(org=s.org)
            if not orgs:
                raise SetupError(f"organization {s.org!r} does not exist")
            org_id = orgs[0].id
            buckets = client.buckets_api()
            bucket = buckets.find_bucket_by_name(s.bucket)
            rule = BucketRetentionRules(every_seconds=int(s.retention.total_seconds()))
            if bucket is None:
                bucket = buckets.create_bucket(
                    bucket_name=s.bucket, org_id=org_id, retention_rules=[rule]
                )
                done.append(f"bucket {s.bucket} created, retention {s.retention.days} d")
            else:
                done.append(f"bucket {s.bucket} exists")
            dbrps = DBRPsService(client.api_client)
            existing = dbrps.get_dbr_ps(org_id=org_id, db=s.database)
            if not existing.content:
                dbrps.post_dbrp(DBRPCreate(org_id=org_id, bucket_id=bucket.id,
                                           database=s.database, retention_policy="autogen",
                                           default=True))  # fmt: skip
                done.append(f"DBRP mapping {s.database}/autogen → {s.bucket} created")
            else:
                done.append(f"DBRP mapping for {s.database} exists")
            s.out.mkdir(parents=True, exist_ok=True)
            auths = client.authorizations_api()
            for name, actions in TOKENS.items():
                permissions = [
                    Permission(action=action, resource=PermissionResource(
                        type="buckets", id=bucket.id, org_id=org_id))
                    for action in actions
                ]  # fmt: skip
                auth = auths.create_authorization(org_id=org_id, permissions=permissions)
                path = s.out / f"{name}.token"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, s.file_mode)
                with os.fdopen(fd, "w") as f:
                    f.write(auth.token)
                path.chmod(s.file_mode)  # also when the file existed
                done.append(f"token {name} ({'+'.join(actions)}) → {path}")
        except ApiException as exc:
            raise SetupError(f"InfluxDB refused: {exc.status} {exc.reason}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise SetupError(f"cannot reach InfluxDB at {s.url}: {exc}") from exc
    return done
