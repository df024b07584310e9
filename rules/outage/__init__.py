"""Outage rules (SPEC §7): detection, the alert lifecycle and notifications."""
