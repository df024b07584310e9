"""Ingest's `/healthz`, `/readyz` and `/metrics`: the shared endpoint (`waystation.health`)."""

from __future__ import annotations

from waystation.health import HealthServer, Observable

__all__ = ["HealthServer", "Observable"]
