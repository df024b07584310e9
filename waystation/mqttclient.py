"""The one place paho clients are built (edge and server side alike).

Needs paho-mqtt, which both the `edge` and `server` extras install; the base
package does not import this module.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from waystation.settings import MqttSettings, MqttVersion

__all__ = ["RECONNECT_MAX_S", "RECONNECT_MIN_S", "MqttVersion", "new_client"]

# paho's own reconnect loop is the single place reconnection happens; it
# doubles the delay from MIN to MAX. Short enough that a broker restart costs
# seconds, long enough that a dead broker is not hammered by every station.
RECONNECT_MIN_S = 1
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
        client.tls_set_context(ssl.create_default_context())
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    return client
