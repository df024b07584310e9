"""Modbus TCP/RTU devices (pymodbus) with the register map in config."""
