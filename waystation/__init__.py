"""Waystation: telemetry, outage alerts and utility cost sharing for worker rest stations."""

__version__ = "0.1.0"
