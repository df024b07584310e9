"""MQTT reason codes: the one place their numbers are read (MQTT 5.0, section 2.4).

The session adapter names every refusal and disconnection with these, and the
edge publisher names a PUBACK's reason with `reason_name`. Codes below 0x80
are successes (0x10, "no matching subscribers", is a delivered PUBACK);
0x80 and above are failures. MQTT 3.1.1's CONNACK return codes arrive here as
their MQTT 5 equivalents (the client library maps them).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "FAILURE",
    "KEEPALIVE_TIMEOUT",
    "NO_MATCHING_SUBSCRIBERS",
    "SESSION_TAKEN_OVER",
    "UNSPECIFIED_ERROR",
    "Packet",
    "hint",
    "is_failure",
    "reason_name",
]

FAILURE = 0x80
UNSPECIFIED_ERROR = 0x80  # also what a client reports for a connection closed without a word
NO_MATCHING_SUBSCRIBERS = 0x10
KEEPALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E


class Packet(StrEnum):
    """Where a code was found: 0x00 means something different in each."""

    CONNACK = "CONNACK"
    PUBACK = "PUBACK"
    SUBACK = "SUBACK"
    DISCONNECT = "DISCONNECT"


_SUCCESS = {
    Packet.CONNACK: "Success",
    Packet.PUBACK: "Success",
    Packet.SUBACK: "Granted QoS 0",
    Packet.DISCONNECT: "Normal disconnection",
}

_NAMES = {
    0x01: "Granted QoS 1",
    0x02: "Granted QoS 2",
    0x04: "Disconnect with Will Message",
    0x10: "No matching subscribers",
    0x11: "No subscription existed",
    0x18: "Continue authentication",
    0x19: "Re-authenticate",
    0x80: "Unspecified error",
    0x81: "Malformed Packet",
    0x82: "Protocol Error",
    0x83: "Implementation specific error",
    0x84: "Unsupported Protocol Version",
    0x85: "Client Identifier not valid",
    0x86: "Bad User Name or Password",
    0x87: "Not authorized",
    0x88: "Server unavailable",
    0x89: "Server busy",
    0x8A: "Banned",
    0x8B: "Server shutting down",
    0x8C: "Bad authentication method",
    0x8D: "Keep Alive timeout",
    0x8E: "Session taken over",
    0x8F: "Topic Filter invalid",
    0x90: "Topic Name invalid",
    0x91: "Packet Identifier in use",
    0x92: "Packet Identifier not found",
    0x93: "Receive Maximum exceeded",
    0x94: "Topic Alias invalid",
    0x95: "Packet too large",
    0x96: "Message rate too high",
    0x97: "Quota exceeded",
    0x98: "Administrative action",
    0x99: "Payload format invalid",
    0x9A: "Retain not supported",
    0x9B: "QoS not supported",
    0x9C: "Use another server",
    0x9D: "Server moved",
    0x9E: "Shared Subscriptions not supported",
    0x9F: "Connection rate exceeded",
    0xA0: "Maximum connect time",
    0xA1: "Subscription Identifiers not supported",
    0xA2: "Wildcard Subscriptions not supported",
}

# What an operator should check, for the codes that have a usual cause.
_HINTS = {
    0x85: "the broker refuses this client id",
    0x86: "check the account's user name and password",
    0x87: "the account may not do this: check the broker's ACL and the client id it is bound to",
    0x8A: "the broker has banned this client",
    0x8E: "another client connected with this client id",
    0x97: "the broker's quota for this client is used up",
    0x95: "the message is larger than the broker accepts",
}


def is_failure(code: int) -> bool:
    return code >= FAILURE


def reason_name(code: int, packet: Packet = Packet.PUBACK) -> str:
    """`Not authorized (0x87)`: the code's name from the standard, with its number."""
    name = _SUCCESS[packet] if code == 0 else _NAMES.get(code, "unknown reason")
    return f"{name} (0x{code:02X})"


def hint(code: int) -> str | None:
    """A short 'what to check' for the codes with a usual cause, else None."""
    return _HINTS.get(code)
