"""The one place paho clients are built (edge and server side alike).

Needs paho-mqtt, which both the `edge` and `server` extras install; the base
package does not import this module. Services do not use these clients
directly: `waystation.mqttsession` wraps one and owns its connection.
"""

from __future__ import annotations

import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from waystation.settings import MqttSettings, MqttVersion

__all__ = ["MqttVersion", "SessionClient", "new_client"]


class SessionClient(mqtt.Client):
    """A paho client that keeps the reason its last connection attempt failed.

    paho's network loop tells `on_connect_fail` only that an attempt failed;
    the session adapter wants to say why (refused, timed out, certificate).
    """

    last_connect_error: OSError | None = None

    def reconnect(self) -> Any:
        try:
            result = super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise
        self.last_connect_error = None
        return result


def new_client(
    settings: MqttSettings,
    client_id: str,
    *,
    manual_ack: bool = False,
    version: MqttVersion = MqttVersion.V5,
) -> SessionClient:
    """A client with a stable id (persistent sessions depend on it).

    MQTT 5 by default. With 3.1.1 the session is made persistent here
    (clean session off); with 5 that is `clean_start=False` at connect.
    """
    client = SessionClient(
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
    return client
