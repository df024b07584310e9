"""Commands that behave: options either side of the verb, the environment everywhere, silences
that cannot miss, dashboards written where told, backfills that say what they keep."""

from __future__ import annotations

import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from app.cli import main
from dashboards.boards import DASHBOARDS
from dashboards.generate import JSON_DIR
from edge.agent import BackfillTooLarge, EdgeAgent
from edge.config import AgentConfig
from tests.helpers import interrupted, station_data
from waystation.settings import MqttSettings


def registry_file(tmp_path: Path, *stations: str) -> Path:
    data: dict[str, object] = {}
    for station in stations:
        data |= station_data(station)
    path = tmp_path / "stations.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "stations": data}, allow_unicode=True), "utf-8")
    return path


def test_options_before_or_after_the_verb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = str(registry_file(tmp_path, "st-a"))
    assert main(["--registry", registry, "check-config"]) == 0
    assert f"OK: {registry} (1 stations" in capsys.readouterr().out
    assert main(["check-config", "--registry", registry]) == 0
    assert f"OK: {registry} (1 stations" in capsys.readouterr().out
    # After the verb wins, as a flag given later should.
    assert main(["--registry", "nowhere.yaml", "check-config", "--registry", registry]) == 0
    capsys.readouterr()
    state = str(tmp_path / "state.db")
    assert main(["silence", "--state", state, "--create-state", "add", "--station", "st-a",
                 "--until", "2h", "--registry", registry]) == 0  # fmt: skip
    assert main(["--registry", registry, "silence", "list", "--state", state]) == 0
    assert "st-a" in capsys.readouterr().out


def test_silence_checks_the_station_and_the_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every setting from the environment, as the rules service's unit would have it.
    monkeypatch.setenv("WAYSTATION_REGISTRY", str(registry_file(tmp_path, "st-a", "st-b")))
    state = tmp_path / "rules-state.db"
    monkeypatch.setenv("WAYSTATION_STATE", str(state))
    monkeypatch.chdir(tmp_path / "..")  # another directory: nothing relative may matter

    assert main(["silence", "list"]) == 2
    err = capsys.readouterr().err
    assert f"no rules state file at {state}" in err
    assert "WAYSTATION_STATE" in err
    assert "没有规则状态文件" in err
    assert not state.exists()  # refused, not silently created empty

    assert main(["silence", "add", "--station", "st-a", "--until", "2h"]) == 2
    assert "--create-state to start a new one" in capsys.readouterr().err
    assert not state.exists()

    assert main(["silence", "add", "--station", "st_a", "--until", "2h", "--create-state"]) == 2
    err = capsys.readouterr().err
    assert "station 'st_a' is not in the registry" in err
    assert "did you mean 'st-a'?" in err
    assert not state.exists()

    assert main(["silence", "add", "--station", "st-a", "--until", "2h", "--create-state",
                 "--reason", "水电维修"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("静默 1：测试驿站 st-a，至 ")  # zh, the registry's default language
    assert out.strip().endswith("+08:00")  # the station's local time, not UTC
    assert main(["silence", "list"]) == 0
    listed = capsys.readouterr().out
    assert "1\t测试驿站 st-a\t" in listed
    assert "+08:00 → " in listed
    assert "水电维修" in listed
    # A time without a zone is the station's local time (here long past).
    assert main(["silence", "add", "--station", "st-b", "--until", "2026-01-01T00:00"]) == 2
    assert "the silence would already be over" in capsys.readouterr().err
    # A time without an offset is the registry's wall-clock time (Asia/Shanghai here).
    later = (datetime.now(UTC) + timedelta(days=2)).astimezone(ZoneInfo("Asia/Shanghai"))
    typed = f"{later:%Y-%m-%d} 08:00"
    assert main(["silence", "add", "--station", "st-b", "--until", typed]) == 0
    assert capsys.readouterr().out.strip().endswith(f"至 {typed} +08:00")
    assert main(["silence", "add", "--station", "st-b", "--until", "next week"]) == 2
    assert "既不是时长" in capsys.readouterr().err
    assert main(["silence", "remove", "1"]) == 0
    assert main(["silence", "remove", "2"]) == 0
    assert main(["silence", "list"]) == 0
    assert capsys.readouterr().out.strip() == "静默 1 已解除\n静默 2 已解除\n没有未结束的静默"
    assert main(["silence", "remove", "1"]) == 1


def test_silence_times_as_people_write_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAYSTATION_REGISTRY", str(registry_file(tmp_path, "st-a")))
    monkeypatch.setenv("WAYSTATION_STATE", str(tmp_path / "rules-state.db"))
    add = ["silence", "add", "--station", "st-a", "--create-state"]
    # Two hours from --from, in the station's zone: not "already over", counted from now.
    assert main([*add, "--from", "2099-12-01T10:00", "--until", "2h"]) == 0
    assert capsys.readouterr().out.strip() == "静默 1：测试驿站 st-a，至 2099-12-01 12:00 +08:00"
    assert main(["silence", "list"]) == 0
    assert "\t2099-12-01 10:00 +08:00 → 2099-12-01 12:00 +08:00\t" in capsys.readouterr().out
    assert main([*add, "--from", "2099-12-01T10:00", "--until", "2099-12-01T09:00"]) == 2
    err = capsys.readouterr().err
    assert "the silence ends (2099-12-01 09:00 +08:00) before it starts (2099-12-01 10:00" in err
    assert "静默的结束时间早于开始时间" in err
    # 5000d is a typo more often than a plan.
    assert main([*add, "--until", "5000d"]) == 2
    err = capsys.readouterr().err
    assert "a silence of 5000 days" in err
    assert "longer than 30 days needs --force" in err
    assert "超过 30 天需要加 --force" in err
    assert main([*add, "--until", "30d"]) == 0
    assert main([*add, "--until", "5000d", "--force"]) == 0
    assert capsys.readouterr().out.count("静默 ") == 2


def test_dashboards_build_writes_where_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = {p: p.stat().st_mtime_ns for p in JSON_DIR.iterdir()}
    monkeypatch.chdir(tmp_path)
    assert main(["dashboards", "build"]) == 0
    assert sorted(p.name for p in (tmp_path / "dashboards" / "json").iterdir()) == sorted(
        f"{name}.json" for name in DASHBOARDS
    )
    assert main(["dashboards", "build", "--out", "elsewhere"]) == 0
    assert len(list((tmp_path / "elsewhere").iterdir())) == len(DASHBOARDS)
    printed = capsys.readouterr().out
    assert "dashboards/json/overview.json" in printed
    assert "elsewhere/overview.json" in printed
    # The package's own copy (the committed JSON) was not touched.
    assert {p: p.stat().st_mtime_ns for p in JSON_DIR.iterdir()} == installed


def test_backfill_too_large_for_the_outbox_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = str(registry_file(tmp_path, "st-a"))
    outbox = tmp_path / "outbox.db"
    # 62 days of five devices (and the gateway) a minute: 446,400 readings, past the default
    # 400,000 and 45 days; the sizes it names hold them with a tenth to spare.
    argv = ["edge", "--registry", registry, "--station", "st-a", "--outbox", str(outbox),
            "--backfill", "62d"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the outbox cannot hold 62d of history: 446,400 readings (5 devices every 1m)" in err
    assert "at most 400,000 readings and 45d; the oldest would be dropped" in err
    assert "--outbox-max-readings 491040 --outbox-max-age 63d" in err
    assert "发件箱装不下" in err
    # Nothing was simulated into it.
    with sqlite3.connect(outbox) as db:
        assert db.execute("SELECT COUNT(*) FROM readings").fetchone() == (0,)


def test_a_sized_outbox_takes_the_backfill(tmp_path: Path) -> None:
    data = station_data("st-a")
    from waystation.registry import parse_registry  # noqa: PLC0415

    config = AgentConfig.from_registry(
        parse_registry({"version": 1, "stations": data}), "st-a", outbox=tmp_path / "o.db"
    )
    sized = config.outbox.model_copy(
        update={"max_readings": 491_040, "max_age": timedelta(days=63)}
    )
    settings = MqttSettings.from_url("mqtt://127.0.0.1:1")  # never connected: not started
    agent = EdgeAgent(
        config.model_copy(update={"outbox": sized}), settings, backfill=timedelta(days=62)
    )
    agent.outbox.close()
    with pytest.raises(BackfillTooLarge, match="cannot hold"):
        EdgeAgent(config, settings, backfill=timedelta(days=62))


def test_an_interrupted_backfill_exits_non_zero_saying_what_it_kept(tmp_path: Path) -> None:
    registry = str(registry_file(tmp_path, "st-a"))
    outbox = tmp_path / "outbox.db"
    argv = [sys.executable, "-m", "app.cli", "edge", "--registry", registry,
            "--station", "st-a", "--outbox", str(outbox), "--backfill", "40d",
            "--mqtt", "mqtt://127.0.0.1:1"]  # fmt: skip
    log = tmp_path / "stderr.txt"
    code, text = interrupted(argv, log, lambda: b"backfill 20%" in log.read_bytes(),
                             "the backfill under way", exit_within_s=30)  # fmt: skip
    assert code == 130
    assert "backfill interrupted: " in text
    assert "of 288,000 readings kept in the outbox" in text
    assert "nothing was published" in text
    assert "回填被中断" in text
    kept = int(text.split("backfill interrupted: ")[1].split(" of ")[0].replace(",", ""))
    assert 0 < kept < 288_000
    with sqlite3.connect(outbox) as db:
        assert db.execute("SELECT COUNT(*) FROM readings").fetchone() == (kept,)


def test_every_command_reads_the_registry_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAYSTATION_REGISTRY", str(tmp_path / "absent.yaml"))
    for argv in (["check-config"], ["broker-config", "--out", str(tmp_path / "b")],
                 ["silence", "list"], ["edge", "--station", "st-a"],
                 ["report", "--month", "2026-01"]):  # fmt: skip
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"{tmp_path / 'absent.yaml'}" in err, argv
        assert "no such file" in err, argv
    assert os.environ["WAYSTATION_REGISTRY"].endswith("absent.yaml")
