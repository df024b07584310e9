from __future__ import annotations

from pathlib import Path

import pytest

from waystation.settings import (
    MqttSettings,
    SettingsError,
    check_influx_url,
    load_config_file,
    resolve,
)


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


@pytest.mark.parametrize(
    ("url", "root"),
    [("http://h:8086/api/v2", "http://h:8086"), ("http://h:8086/query", "http://h:8086"),
     ("https://h/influx/write", "https://h/influx"), ("http://h:8086/api/v2/write", "http://h:8086")],
)  # fmt: skip
def test_an_influx_url_naming_an_api_path_is_refused(url: str, root: str) -> None:
    """`/api/v2` passed the check, then every query failed with "404 page not found"."""
    with pytest.raises(SettingsError) as info:
        check_influx_url(url)
    [problem] = info.value.problems
    assert "names an API path" in problem.what.en
    assert "接口路径" in problem.what.zh
    assert problem.fix is not None
    assert problem.fix.en == f"give the server's address: {root}"


@pytest.mark.parametrize("url", ["http://h:8086", "http://h:8086/", "https://h/influx/"])
def test_a_server_address_or_a_proxy_prefix_is_fine(url: str) -> None:
    assert check_influx_url(url) == url
