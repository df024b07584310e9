"""The connection settings a command will use: the broker's URL and CA file, InfluxDB's URL."""

from __future__ import annotations

from app.checks.plan import Checked, Plan
from waystation.configerror import ConfigError, Problem, Text
from waystation.settings import MqttSettings, check_influx_url

__all__ = ["check_connection"]


def check_connection(plan: Plan, out: Checked) -> None:
    if plan.mqtt is not None:
        try:
            settings = MqttSettings.from_url(plan.mqtt, plan.mqtt_ca)
        except ConfigError as exc:
            out.collect(exc)
        else:
            if settings.ca_file is not None and not settings.ca_file.is_file():
                out.problems.append(
                    Problem(
                        Text(
                            f"CA certificate {settings.ca_file} does not exist",
                            f"CA 证书 {settings.ca_file} 不存在",
                        ),
                        Text(
                            "give the broker's CA file with --mqtt-ca / WAYSTATION_MQTT_CA",
                            "用 --mqtt-ca / WAYSTATION_MQTT_CA 指定 MQTT 服务器的 CA 证书",
                        ),
                        where="--mqtt-ca / WAYSTATION_MQTT_CA",
                        code="no_file",
                    )
                )
    if plan.influx is not None:
        try:
            check_influx_url(plan.influx)
        except ConfigError as exc:
            out.collect(exc)
