"""The connection settings a command will use: the broker's URL and CA file, InfluxDB's URL."""

from __future__ import annotations

from app.checks.plan import Checked, Plan
from waystation.configerror import ConfigError, Problem, Text
from waystation.settings import MqttSettings, check_influx_url

__all__ = ["check_connection"]


def check_connection(plan: Plan, out: Checked) -> None:
    """The URLs and the CA file, each problem placed where its value was given."""
    if plan.mqtt is not None:
        mqtt, ca = plan.origins.get("mqtt"), plan.origins.get("mqtt_ca")
        try:
            where = mqtt.where if mqtt else "--mqtt / WAYSTATION_MQTT"
            settings = MqttSettings.from_url(plan.mqtt, plan.mqtt_ca, where)
        except ConfigError as exc:
            out.problems += mqtt.locate(exc.problems) if mqtt else exc.problems
        else:
            if settings.ca_file is not None and not settings.ca_file.is_file():
                where = ca.where if ca else "--mqtt-ca / WAYSTATION_MQTT_CA"
                missing = Problem(
                    Text(
                        f"CA certificate {settings.ca_file} does not exist",
                        f"CA 证书 {settings.ca_file} 不存在",
                    ),
                    Text(
                        f"give the broker's CA file in {where}",
                        f"在 {where} 中指定 MQTT 服务器的 CA 证书",
                    ),
                    where=where,
                    code="no_file",
                )
                out.problems += ca.locate([missing]) if ca else [missing]
    if plan.influx is not None:
        influx = plan.origins.get("influx")
        try:
            check_influx_url(
                plan.influx, influx.where if influx else "--influx / WAYSTATION_INFLUX"
            )
        except ConfigError as exc:
            out.problems += influx.locate(exc.problems) if influx else exc.problems
