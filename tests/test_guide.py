"""The Chinese operator guide's commands: every one parses, and those that need no server run.

Each `waystation` line of the guide's shell blocks is parsed with the real
command line (a renamed flag fails here); the ones that work offline (the
sample files, check-config, broker-config, silences, dashboards build) are
run as written, in order, in a scratch directory, and must succeed.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import build_parser, main

GUIDE = Path(__file__).parent.parent / "docs" / "zh-CN" / "guide.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
OFFLINE = {"sample-registry", "check-config", "broker-config", "silence", "dashboards"}
# What the sample rules config takes from the environment, as an operator sets it.
SECRETS = ("DINGTALK_TOKEN", "DINGTALK_SECRET", "WECOM_KEY", "WECOM_FENGYUN_KEY", "FEISHU_HOOK",
           "FEISHU_SECRET", "SMTP_USER", "SMTP_PASSWORD")  # fmt: skip


def commands() -> list[tuple[list[str], str | None]]:
    """(argv after `waystation`, the file its output is redirected to) for each guide line."""
    out = []
    for block in BLOCK.findall(GUIDE.read_text("utf-8")):
        for line in block.splitlines():
            words = shlex.split(line)
            if not any(w.endswith("waystation") for w in words[:2]):
                continue
            argv = words[[w.endswith("waystation") for w in words].index(True) + 1 :]
            target = None
            if ">" in argv:
                at = argv.index(">")
                argv, target = argv[:at], argv[at + 1]
            out.append((argv, target))
    return out


def test_the_guide_links_from_the_readme_and_has_every_part() -> None:
    readme = (GUIDE.parent.parent.parent / "README.md").read_text("utf-8")
    assert "](docs/zh-CN/guide.md)" in readme[:1000]  # at the top
    text = GUIDE.read_text("utf-8")
    for part in ("安装", "站点登记", "采集网关", "MQTT 账号", "告警规则与通知通道", "月度分摊报表",
                 "看板", "常见错误排查"):  # fmt: skip
        assert "## " in text
        assert part in text, part


def test_every_command_of_the_guide_parses() -> None:
    found = commands()
    assert len(found) >= 15
    parser = build_parser()
    verbs = set()
    for argv, _ in found:
        args = parser.parse_args(argv)
        verbs.add(args.command)
    assert verbs >= {"sample-registry", "check-config", "edge", "broker-config", "rules",
                     "silence", "report", "dashboards"}  # fmt: skip


def test_the_offline_commands_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in SECRETS:
        monkeypatch.setenv(name, f"filled-in-{name.lower()}")
    ran = 0
    for argv, target in commands():
        offline = argv[0] in OFFLINE or "--sample-config" in argv
        if not offline or argv[:2] == ["dashboards", "push"]:
            continue
        if "--until" in argv:  # the guide's date, moved to tomorrow once it has passed
            at = argv.index("--until") + 1
            if datetime.fromisoformat(argv[at]).replace(tzinfo=UTC) < datetime.now(UTC):
                argv[at] = f"{datetime.now(UTC) + timedelta(days=1):%Y-%m-%d} 08:00"
        with contextlib.ExitStack() as stack:
            if target is not None:
                file = stack.enter_context(Path(target).open("w", encoding="utf-8"))
                stack.enter_context(contextlib.redirect_stdout(file))
            code = main(argv)
            assert code == 0, (argv, capsys.readouterr().err)
        ran += 1
    assert ran >= 10
    printed = capsys.readouterr().out
    assert "静默 1：达川·骑手家园 1 号，至 " in printed
    assert "水电检修" in printed
    assert (tmp_path / "dashboards" / "json" / "overview.json").exists()
    assert (tmp_path / "broker" / "passwd").exists()
