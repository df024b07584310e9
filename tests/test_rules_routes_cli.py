"""`check-config` validates the routing tree against the registry; `rules routes` shows it."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli import main

DEMO = str(files("app.data").joinpath("demo-stations.yaml"))
SECRETS = ("DINGTALK_TOKEN", "DINGTALK_SECRET", "WECOM_KEY", "WECOM_FENGYUN_KEY", "FEISHU_HOOK",
           "FEISHU_SECRET", "SMTP_USER", "SMTP_PASSWORD")  # fmt: skip

CHANNELS = [
    {"type": "log"},
    {"type": "webhook", "name": "xiaoge", "url": "http://127.0.0.1:9/x"},
    {"type": "webhook", "name": "union", "url": "http://127.0.0.1:9/u"},
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def table(out: str) -> list[str]:
    """`rules routes`' lines after the station's (any warnings come before it)."""
    lines = out.splitlines()
    [header] = [i for i, line in enumerate(lines) if "运营方 operator:" in line]
    return lines[header + 1 :]


def rules(tmp_path: Path, route: dict[str, Any]) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"channels": CHANNELS, "route": route}, allow_unicode=True,
                                   sort_keys=False), "utf-8")  # fmt: skip
    return str(path)


def test_the_sample_routes_fit_the_sample_district(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in SECRETS:
        monkeypatch.setenv(name, f"value-of-{name}")
    assert main(["rules", "--sample-config"]) == 0
    sample = tmp_path / "rules.yaml"
    sample.write_text(capsys.readouterr().out, encoding="utf-8")
    code, out = run(capsys, "--registry", DEMO, "check-config", "--rules-config", str(sample))
    assert code == 0, out
    assert "(8 channels)" in out
    assert "route.channels" not in out  # two duty channels in the root: no warning
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", str(sample),
                    "--station", "dachuan-rider-03", "--rule", "dispenser_cold")  # fmt: skip
    assert code == 0, out
    assert out.splitlines()[1:] == [
        "dispenser_cold [warning] r03-disp-01",
        "  root/* → log, mqtt, webhook  (wait/interval/repeat 1s/30s/4h)",
        '  root/operator=~".+"/operator=fengyun-logistics → fengyun-wecom  '
        "(wait/interval/repeat 1s/30s/4h)",
        "  2h 后升级 escalated after 2h → union-dingtalk",
    ]
    assert "达州风云物流有限公司 fengyun-logistics" in out.splitlines()[0]
    # The community centre's station: its e-mail, with the route's own repeat interval.
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", str(sample),
                    "--station", "dachuan-community-01", "--severity", "critical")  # fmt: skip
    assert code == 0, out
    assert "operator=cuiping-centre → email  (wait/interval/repeat 1s/30s/12h)" in out
    assert "root/severity=critical → union-dingtalk" in out


def test_unknown_parties_and_stations_and_unreachable_routes_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rules(tmp_path, {
        "channels": ["log"],
        "routes": [
            {"match": {"operator": "xiaoge-cofee"}, "channels": ["xiaoge"]},
            {"match": {"station": ["dachuan-rider-01", "dachuan-rider-99"]}, "channels": ["log"]},
            {"match": {"severity": "critical"}, "channels": ["union"]},
            {"match": {"rule": "station_down"}, "channels": ["union"]},  # criticals went above
            {"matchers": ["operator =~ nobody-.*"], "channels": ["union"]},
        ],
    })  # fmt: skip
    code, out = run(capsys, "--registry", DEMO, "check-config", "--rules-config", path)
    assert code == 2
    assert "rules.yaml:14:7 route.routes.0.match.operator\n" in out
    assert "没有 'xiaoge-cofee' 这个承担方（operator）" in out
    assert "did you mean 'xiaoge-coffee'?" in out
    assert "there is no station 'dachuan-rider-99' (station)" in out
    assert "rules.yaml:20:9 route.routes.1.match.station.1\n" in out
    # A typo is said once, as a typo, not again as an unreachable route.
    assert out.count("no alert of the registry's stations reaches route") == 2
    assert "reaches route 'rule=station_down'" in out
    assert "reaches route 'operator=~\"nobody-.*\"'" in out
    assert "4 处错误 error(s)" in out
    # The same problems stop the service at start-up, before it connects anywhere.
    code, out = run(capsys, "--registry", DEMO, "rules", "--rules-config", path,
                    "--no-allocation")  # fmt: skip
    assert code == 2
    assert "did you mean 'xiaoge-coffee'?" in out


def test_routes_needs_a_known_station_and_says_when_nothing_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rules(tmp_path, {"channels": ["log"], "routes": [
        {"match": {"operator": "xiaoge-coffee"}, "channels": ["xiaoge"],
         "escalate_after": "90m", "escalate_to": ["union"]}]})  # fmt: skip
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path)
    assert code == 2
    assert "--station" in out
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path,
                    "--station", "nowhere")  # fmt: skip
    assert code == 2
    assert "no station 'nowhere'" in out
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path,
                    "--station", "dachuan-rider-01", "--rule", "station_dwon")  # fmt: skip
    assert code == 2
    assert "no rule 'station_dwon'; 是不是 did you mean 'station_down'?" in out
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path,
                    "--station", "dachuan-rider-01", "--severity", "crit")  # fmt: skip
    assert code == 2
    assert "no severity 'crit'; 是不是 did you mean 'critical'?" in out
    # Another station's device: said where it is, not "nothing fits".
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path,
                    "--station", "dachuan-rider-01", "--device", "r02-door-01")  # fmt: skip
    assert code == 2
    assert "no device 'r02-door-01' at station dachuan-rider-01" in out
    assert "it is at station dachuan-rider-02" in out
    # A rule that fits but not on this station's devices: nothing fits.
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path,
                    "--station", "dachuan-rider-01", "--rule", "door_silent",
                    "--device", "r01-gw-01")  # fmt: skip
    assert code == 2, out
    assert "no alert of this station fits" in out
    # The service's own alerts: the root's channels, said so.
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path,
                    "--station", "dachuan-rider-01", "--rule", "channel_failing")  # fmt: skip
    assert code == 0, out
    assert "the service's own alerts go to the root's channels only → log" in out
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path,
                    "--station", "dachuan-rider-01", "--device", "r01-door-01")  # fmt: skip
    assert code == 0, out
    assert table(out) == [
        "device_fault [warning] r01-door-01",
        "  root/operator=xiaoge-coffee → xiaoge  (wait/interval/repeat 1s/30s/4h)",
        "  90m 后升级 escalated after 90m → union",
        "device_silent [warning] r01-door-01",
        "  root/operator=xiaoge-coffee → xiaoge  (wait/interval/repeat 1s/30s/4h)",
        "  90m 后升级 escalated after 90m → union",
        "door_silent [info] r01-door-01",
        "  root/operator=xiaoge-coffee → xiaoge  (wait/interval/repeat 1s/30s/4h)",
        "  90m 后升级 escalated after 90m → union",
    ]
    # Another operator's station: the root's channels, no escalation.
    code, out = run(capsys, "--registry", DEMO, "rules", "routes", "--rules-config", path,
                    "--station", "dachuan-rider-02", "--rule", "station_down")  # fmt: skip
    assert code == 0, out
    assert table(out) == [
        "station_down [critical] (station)",
        "  root → log  (wait/interval/repeat 1s/30s/4h)",
    ]


def test_a_catastrophic_regex_is_matched_in_linear_time_like_alertmanagers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A careless `([a-z0-9-]+)*!` backtracks for ever in Python's `re` on a long station
    id; routes use RE2, as Alertmanager does, so `check-config` answers (the route fits no
    station) instead of hanging. The limit below is not a speed figure: it only turns a
    hang into a failure. RE2's syntax is Alertmanager's: a look-ahead is an error."""
    registry = tmp_path / "stations.yaml"
    long_id = "dachuan-rider-station-with-a-long-identifier-0001"
    registry.write_text(yaml.safe_dump({
        "version": 1,
        "parties": {"union": {"name": "达川区总工会", "type": "union"}},
        "stations": {long_id: {"name": "驿站", "model": "community_integrated", "operator": "union",
                               "devices": {"gw-0001": {"kind": "gateway"}}}},
    }, allow_unicode=True), "utf-8")  # fmt: skip
    path = rules(tmp_path, {"channels": ["log"], "routes": [
        {"matchers": ['station =~ "([a-z0-9-]+)*!"'], "channels": ["union"]}]})  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--registry", str(registry), "check-config",
         "--rules-config", path],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no alert of the registry's stations reaches route" in done.stdout + done.stderr
    path = rules(tmp_path, {"channels": ["log"], "routes": [
        {"matchers": ['station =~ "(?!dachuan).*"'], "channels": ["union"]}]})  # fmt: skip
    code, out = run(capsys, "--registry", str(registry), "check-config", "--rules-config", path)
    assert code == 2
    assert "is not a regular expression: invalid perl operator: (?!" in out
    assert "RE2 syntax, as in Alertmanager" in out


def test_a_root_whose_only_chat_channel_could_fail_unheard_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the root's channels get the service's own alerts: with one chat channel there,
    its failure (channel_failing) reaches the log only; with none, nobody hears
    monitoring_lost. A warning, not an error: the service still starts."""
    routes = [{"match": {"operator": "xiaoge-coffee"}, "channels": ["xiaoge"]}]
    path = rules(tmp_path, {"channels": ["log", "union"], "routes": routes})
    code, out = run(capsys, "--registry", DEMO, "check-config", "--rules-config", path)
    assert code == 0, out
    assert "rules.yaml:10:3 route.channels\n" in out
    assert "the root route has one channel besides the log, union: if it fails" in out
    assert "e.g. xiaoge" in out
    path = rules(tmp_path, {"channels": ["log"], "routes": routes})
    code, out = run(capsys, "--registry", DEMO, "check-config", "--rules-config", path)
    assert code == 0, out
    assert "根路由只写了日志通道" in out
    assert "monitoring_lost and channel_failing" in out
    path = rules(tmp_path, {"channels": ["log", "union", "xiaoge"], "routes": routes})
    code, out = run(capsys, "--registry", DEMO, "check-config", "--rules-config", path)
    assert code == 0, out
    assert "root_duty" not in out
    assert "route.channels" not in out
