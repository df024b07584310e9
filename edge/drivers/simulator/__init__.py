"""Simulated devices: a coherent station (see edge.simulation)."""
