"""No secret in a log line: a run that used every secret-bearing setting, its logs scanned.

`waystation ingest`, `rules`, `edge` and `dashboards push` run as an operator
runs them, at DEBUG (where urllib3 logs each request's path and query), with
every secret there is: MQTT passwords, an InfluxDB password inside `--influx`
and a token, the robots' tokens in the query (WeCom, DingTalk) and in the
path (Feishu), their signing secrets, a webhook's password, query token and
header, the SMTP password, Grafana's password and token. Every endpoint fails
on purpose, so the URLs end up in warnings and tracebacks. Not one secret may
appear in what they wrote; the URLs' lines must be there (masked).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from app.localservers import free_port
from tests.accounts import secured_broker, two_stations
from tests.helpers import MqttSpy, station_data, wait_for
from tests.rules_peers import HookServer, SmtpPeer
from tests.tls import make_ca_and_cert

pytestmark = pytest.mark.integration

SECRETS = {
    "influx_password": "Influx-pa55-7ab1e",
    "influx_token": "influx-token-5ecret-0c7",
    "wecom_key": "wecom-key-9f8e7d6c",
    "dingtalk_token": "dingtalk-access-3b4c5d",
    "dingtalk_secret": "SECdingtalk-sign-77aa",
    "feishu_hook": "feishu-hook-0a1b2c3d",
    "feishu_secret": "feishu-sign-secret-99",
    "webhook_password": "hook-pa55word-42",
    "webhook_token": "hook-query-token-17",
    "webhook_header": "Bearer-hook-header-55",
    "smtp_password": "smtp-wrong-pa55-31",
    "grafana_password": "grafana-pa55-8d",
    "grafana_token": "glsa_grafana-token-6e",
    "edge_password": "edge-wrong-pa55-12",
}


def _run(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**(env or {}), "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _rules_yaml(path: Path, hooks: HookServer, smtp_port: int, ca: Path, dead: int) -> Path:
    s = SECRETS
    channels = [
        {"type": "wecom", "url": hooks.url(f"/cgi-bin/webhook/send?key={s['wecom_key']}")},
        {"type": "dingtalk", "url": hooks.url(f"/robot/send?access_token={s['dingtalk_token']}"),
         "secret": "${TEST_DINGTALK_SECRET}"},
        # Feishu's token is in the path; this one's host does not answer at all.
        {"type": "feishu", "url": f"http://127.0.0.1:{dead}/open-apis/bot/v2/hook/{s['feishu_hook']}",
         "secret": "${TEST_FEISHU_SECRET}"},
        {"type": "webhook",
         "url": hooks.url(f"/alerts?token={s['webhook_token']}").replace(
             "http://", f"http://ops:{s['webhook_password']}@"),
         "headers": {"Authorization": s["webhook_header"]}},
        {"type": "email", "host": "127.0.0.1", "port": smtp_port, "ca_file": str(ca),
         "sender": "a@waystation.test", "to": ["b@waystation.test"],
         "username": "alerts", "password": "${TEST_SMTP_PASSWORD}"},
    ]  # fmt: skip
    path.write_text(yaml.safe_dump({
        # No grace after connecting: the retained offline status counts at once.
        "thresholds": {"station_window": "1s", "reconnect_grace": "1ms"},
        "timing": {"scan_every": "0.5s"},
        "channels": channels,
    }))  # fmt: skip
    return path


def test_a_run_with_every_secret_logs_none_of_them(tmp_path: Path, hooks: HookServer) -> None:
    registry = two_stations()
    registry_file = tmp_path / "stations.yaml"
    registry_file.write_text(
        yaml.safe_dump({"version": 1, "stations": station_data("st-a") | station_data("st-b")})
    )
    s = SECRETS
    for path in ("/cgi-bin/webhook/send", "/robot/send", "/alerts"):
        hooks.fail[path] = 1000  # every robot answers 500
    dead = free_port()  # nothing listens here: InfluxDB, Feishu and Grafana are "down"
    ca, cert, key = make_ca_and_cert(tmp_path)
    logs = [tmp_path / f"{n}.log" for n in ("ingest", "rules", "edge", "dashboards")]
    with (
        secured_broker(registry, tmp_path) as broker,
        SmtpPeer(cert, key, login=("alerts", "the-right-password")) as smtp,
    ):
        url = f"mqtt://{{}}:{{}}@127.0.0.1:{broker.server.port}"
        ingest_mqtt = url.format("waystation-ingest-1", broker.credentials["waystation-ingest-1"])
        rules_mqtt = url.format("waystation-rules-1", broker.credentials["waystation-rules-1"])
        secrets = [*s.values(), *broker.credentials.values()]
        common = ["--registry", str(registry_file), "--log-level", "DEBUG"]
        ingest = _run(
            ["ingest", *common, "--mqtt", ingest_mqtt, "--health-port", "0",
             "--influx", f"http://admin:{quote(s['influx_password'])}@127.0.0.1:{dead}"],
            logs[0],
        )  # fmt: skip
        rules_file = _rules_yaml(tmp_path / "rules.yaml", hooks, smtp.port, ca, dead)
        rules = _run(
            ["rules", *common, "--mqtt", rules_mqtt, "--rules-config", str(rules_file),
             "--state", str(tmp_path / "state.db"), "--reports", str(tmp_path / "reports"),
             "--influx", f"http://127.0.0.1:{dead}",
             "--health-port", "0"],  # not 9109: another suite on the box may hold it
            logs[1],
            env={"WAYSTATION_INFLUX_TOKEN": f"reader:{s['influx_token']}",
                 "TEST_DINGTALK_SECRET": s["dingtalk_secret"],
                 "TEST_FEISHU_SECRET": s["feishu_secret"],
                 "TEST_SMTP_PASSWORD": s["smtp_password"]},
        )  # fmt: skip
        edge = _run(
            ["edge", *common, "--station", "st-a", "--outbox", str(tmp_path / "o.db"),
             "--mqtt", f"mqtt://st-a-gw:{s['edge_password']}@127.0.0.1:{broker.server.port}"],
            logs[2],
        )  # fmt: skip
        try:
            # Station A's agent dies: an alert, whose notices every channel fails to send.
            offline = {"v": 1, "ts": int(time.time() * 1000), "state": "offline", "agent": "t/1"}
            with MqttSpy(broker.as_user("st-a-gw"), "st-a-gw", []) as agent:
                agent.client.publish(  # retained: the rules get it whenever they subscribe
                    "stations/st-a/st-a-gw/status", json.dumps(offline), qos=1, retain=True
                ).wait_for_publish(5)

                def ingest_tried() -> bool:  # readings until ingest is subscribed and writes
                    reading = {"v": 1, "kind": "door_counter", "ts": int(time.time() * 1000),
                               "seq": 1, "data": {"in_total": 1, "out_total": 1}}  # fmt: skip
                    agent.client.publish("stations/st-a/st-a-door/telemetry", json.dumps(reading))
                    return "InfluxDB unavailable" in logs[0].read_text()

                wait_for(ingest_tried, "ingest's write to fail", 30)

            def tried_everything() -> bool:
                text = logs[1].read_text()
                return all(w in text for w in ("answered 500", "cannot reach", "channel email"))

            wait_for(tried_everything, "every channel to fail once", 60)
            wait_for(lambda: "refused" in logs[2].read_text(), "the edge refused", 30)
            push = subprocess.run(
                [sys.executable, "-m", "app.cli", "dashboards", "push",
                 "--grafana", f"http://admin:{s['grafana_password']}@127.0.0.1:{dead}",
                 "--grafana-token", f"admin:{s['grafana_token']}"],
                capture_output=True, check=False,
            )  # fmt: skip
            logs[3].write_bytes(push.stdout + push.stderr)
        finally:
            for proc in (ingest, rules, edge):
                _stop(proc)

    text = {log.name: log.read_text() for log in logs}
    leaks = {
        (name, secret)
        for name, body in text.items()
        for secret in secrets
        for form in {secret, quote(secret, safe="")}
        if form in body
    }
    assert not leaks, f"secrets in the logs: {sorted(leaks)}"
    # The lines that carried them are there, masked: the scan looked at something.
    assert "/open-apis/bot/v2/hook/***" in text["rules.log"]
    assert "key=***" in text["rules.log"]  # urllib3's DEBUG request line
    assert "access_token=***" in text["rules.log"]
    assert "http://127.0.0.1:" in text["ingest.log"]
    assert "Grafana" in text["dashboards.log"]
