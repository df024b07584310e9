"""The one place paho clients are built (edge and server side alike).

Needs paho-mqtt, which both the `edge` and `server` extras install; the base
package does not import this module.
"""

from __future__ import annotations

import random
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from waystation.settings import MqttSettings, MqttVersion

__all__ = ["RECONNECT_MAX_S", "RECONNECT_MIN_S", "MqttVersion", "new_client"]

# paho's own reconnect loop is the single place reconnection happens; it
# doubles the delay from MIN to MAX. Short enough that a broker restart costs
# seconds, long enough that a dead broker is not hammered by every station.
# paho has no jitter of its own, so each client draws its own starting delay
# in [MIN, 2 MIN): a district's agents, cut off together, do not retry in
# lockstep (a spread, not full jitter).
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30


def new_client(
    settings: MqttSettings,
    client_id: str,
    *,
    manual_ack: bool = False,
    version: MqttVersion = MqttVersion.V5,
) -> mqtt.Client:
    """A client with a stable id (persistent sessions depend on it).

    MQTT 5 by default. With 3.1.1 the session is made persistent here
    (clean session off); with 5 that is `clean_start=False` at connect.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5
        if version is MqttVersion.V5
        else MQTTProtocolVersion.MQTTv311,
        clean_session=None if version is MqttVersion.V5 else False,
        manual_ack=manual_ack,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set_context(ssl.create_default_context(cafile=settings.ca_file))
    first_delay = RECONNECT_MIN_S * (1 + random.random())  # noqa: S311 - spreading, not secrecy
    client.reconnect_delay_set(first_delay, RECONNECT_MAX_S)  # type: ignore[arg-type]
    return client
