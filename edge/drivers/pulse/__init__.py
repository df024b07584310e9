"""Pulse/counter inputs: integer counters the kernel or a counter board exposes as files."""
