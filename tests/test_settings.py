from __future__ import annotations

from pathlib import Path

import pytest

from waystation.settings import MqttSettings, SettingsError, load_config_file, resolve


def test_precedence_flag_then_env_then_file_then_default(tmp_path: Path) -> None:
    cfg = tmp_path / "waystation.yaml"
    cfg.write_text("mqtt: mqtt://file:1\ninflux: http://file:2\ndatabase: fromfile\n")
    config = load_config_file(cfg)
    env = {"WAYSTATION_MQTT": "mqtt://env:1", "WAYSTATION_INFLUX": "http://env:2"}
    got = resolve({"mqtt": "mqtt://flag:1"}, config, env)
    assert got["mqtt"] == "mqtt://flag:1"
    assert got["influx"] == "http://env:2"
    assert got["database"] == "fromfile"
    assert got["registry"] == "stations.yaml"
    assert got["influx_token"] is None


def test_config_file_rejects_unknown_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "waystation.yaml"
    cfg.write_text("mqtt: mqtt://x:1\nmqqt: typo\n")
    with pytest.raises(SettingsError, match="mqqt"):
        load_config_file(cfg)


def test_mqtt_url() -> None:
    s = MqttSettings.from_url("mqtts://dev%40a:p%3Ass@broker.example:8884")
    assert (s.host, s.port, s.username, s.password, s.tls) == (
        "broker.example",
        8884,
        "dev@a",
        "p:ss",
        True,
    )
    assert "p:ss" not in str(s)
    assert MqttSettings.from_url("mqtt://h").port == 1883
    assert MqttSettings.from_url("mqtts://h").port == 8883
    with pytest.raises(SettingsError, match="mqtt://") as info:
        MqttSettings.from_url("http://user:secret@h:1")
    assert "secret" not in str(info.value)
