"""The mistakes people make in config files, each through `waystation check-config`:
the exit status, the file, line and column, and the words that say how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.cli import main
from edge.config import SAMPLE
from edge.drivers.dlt645.frame import encode_address
from rules.allocation.tariff import SHIPPED_DIR
from tests.helpers import station_data

GOOD = """\
version: 1
stations:
  st-a:
    name: 驿站 A
    model: community_integrated
    devices:
      a-meter: {kind: meter, utility: electricity}
      a-gw: {kind: gateway}
"""


def check(_tmp: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check-config", *args])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def registry(tmp_path: Path, text: str | bytes, name: str = "stations.yaml") -> str:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return str(path)


def test_the_good_file_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = check(tmp_path, capsys, "--registry", registry(tmp_path, GOOD))
    assert code == 0
    assert "(1 stations, 2 devices)" in out


def test_a_tab_says_so_on_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = registry(tmp_path, GOOD.replace("    model:", "\tmodel:"))
    code, out = check(tmp_path, capsys, "--registry", path)
    assert code == 2
    assert f"{path}:5:1\n" in out
    assert "found character '\\t' that cannot start any token" in out
    assert "YAML indents with spaces only: replace the tab(s) on this line with spaces" in out
    assert "把这一行的制表符（Tab 键）换成空格" in out


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        # A key typed with a Chinese input method: PyYAML notices on the next line.
        (("    name: 驿站 A", "    name：驿站 A"), ":4:9", "full-width colon '：' (U+FF1A)"),
        # Inside a flow mapping it is a strange key instead: both problems point at it.
        (("{kind: gateway}", "{kind：gateway}"), ":8:7 station 'st-a', device 'a-gw': kind\n",
         "全角冒号"),
        (("{kind: meter, utility", "{kind: meter，utility"), ":7:28\n", "full-width comma '，'"),
        (("    model:", "　　model:"), ":5:1", "full-width space '　' (U+3000)"),
    ],
)  # fmt: skip
def test_full_width_punctuation_is_named_where_it_is(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    where: str,
    words: str,
) -> None:
    path = registry(tmp_path, GOOD.replace(*change))
    code, out = check(tmp_path, capsys, "--registry", path)
    assert code == 2
    assert f"{path}{where}" in out
    assert words in out
    assert "<unicode string>" not in out


def test_chinese_punctuation_inside_a_value_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = registry(tmp_path, GOOD.replace("name: 驿站 A", "name: 驿站：南区，二号"))
    assert check(tmp_path, capsys, "--registry", path)[0] == 0


def test_a_gbk_file_is_told_to_be_saved_as_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = registry(tmp_path, GOOD.encode("gbk"))
    code, out = check(tmp_path, capsys, "--registry", path)
    assert code == 2
    assert f"{path}:4:11" in out  # the first byte that is not UTF-8: 驿 in GBK
    assert "the file is not UTF-8 (it looks like GBK/GB18030)" in out
    assert "save the file as UTF-8" in out
    assert "请把文件另存为 UTF-8 编码" in out
    assert "codec can't decode" not in out


def test_utf16_is_named_and_a_bom_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, capsys, "--registry", registry(tmp_path, GOOD.encode("utf-16")))
    assert code == 2
    assert "the file is saved as UTF-16, not UTF-8" in out
    bom = registry(tmp_path, GOOD.encode("utf-8-sig"), "bom.yaml")  # what Notepad saves
    assert check(tmp_path, capsys, "--registry", bom)[0] == 0


def agent(tmp_path: Path, text: str) -> str:
    path = tmp_path / "agent.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_device_written_twice_in_an_agent_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    twice = SAMPLE + "  r01-locker-01:\n    kind: charging_locker\n    interval: 5m\n"
    code, out = check(tmp_path, capsys, "--agent-config", agent(tmp_path, twice))
    assert code == 2
    assert "agent.yaml:39:3 device 'r01-locker-01'" in out
    assert "key 'r01-locker-01' appears twice (lines 36 and 39)" in out
    assert "YAML would silently keep only the last" in out


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        (("gateway_interval: 60s", "gateway_interval: 60s\ntimezone: Asia/Chengdu"),
         ":6:11 timezone", "unknown time zone 'Asia/Chengdu'"),
        (('address: "000012345678"', 'address: "0000123456BC"'),
         ":15:69 device 'r01-meter-main': driver.address", "not a DL/T 645 meter address"),
        # Unquoted, YAML reads 000012345670 as an octal number.
        (('address: "000012345678"', "address: 000012345670"),
         ":15:69 device 'r01-meter-main': driver.address", 'address: "000012345670" (check'),
        (('address: "000012345678"', "address: 123456789012"),
         ":15:69 device 'r01-meter-main': driver.address", 'address: "123456789012" (check'),
        (("      unit: 1", "      unit: 1\n      colour: red"),
         ":23:7 device 'r01-disp-01': driver.colour", "keys allowed here: transport, host"),
        (("    driver: {type: simulator}", "    driver: {type: simulater}"),
         ":38:20 device 'r01-locker-01': driver.type", "did you mean 'simulator'?"),
    ],
)  # fmt: skip
def test_agent_config_mistakes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: tuple[str, str],
    where: str,
    words: str,
) -> None:
    assert change[0] in SAMPLE
    code, out = check(tmp_path, capsys, "--agent-config", agent(tmp_path, SAMPLE.replace(*change)))
    assert code == 2
    assert f"agent.yaml{where}" in out
    assert words in out


def test_the_dlt645_check_accepts_exactly_what_the_codec_encodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for address in ("000012345678", "AAAAAAAAAAAA", "0000123456BC", "00001234567", "12345678901Z"):
        text = SAMPLE.replace('"000012345678"', f'"{address}"')
        code, _ = check(tmp_path, capsys, "--agent-config", agent(tmp_path, text))
        try:
            encode_address(address)
        except ValueError:
            assert code == 2, address
        else:
            assert code == 0, address


def test_a_rule_name_that_does_not_exist_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("timing:\n  pending_for:\n    device_silnet: 5m\n    door_silent: 10m\n")
    code, out = check(
        tmp_path, capsys, "--registry", registry(tmp_path, GOOD), "--rules-config", str(rules)
    )
    assert code == 2
    assert "rules.yaml:3:5 timing.pending_for.device_silnet" in out
    assert "there is no rule 'device_silnet'" in out
    assert "did you mean 'device_silent'?" in out


def test_a_tariff_with_a_full_width_comma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = (SHIPPED_DIR / "sichuan-general-commercial.yaml").read_text("utf-8")
    broken = tmp_path / "tariffs" / "ours.yaml"
    broken.parent.mkdir()
    broken.write_text(shipped.replace("[10-12, 15-21]", "[10-12，15-21]"), "utf-8")
    station: dict[str, object] = dict(station_data("st-a")["st-a"])  # type: ignore[call-overload]
    data = {"version": 1, "tariff": "sichuan-general-commercial",
            "parties": {"u": {"name": "工会", "type": "union"}},
            "stations": {"st-a": station | {"operator": "u"}}}  # fmt: skip
    path = registry(tmp_path, yaml.safe_dump(data, allow_unicode=True))
    code, out = check(tmp_path, capsys, "--registry", path, "--tariffs", str(broken.parent))
    assert code == 2
    assert "ours.yaml:22:16 version 1: electricity.periods.peak.0" in out
    assert "'10-12，15-21' is not an hour range" in out
    assert "full-width comma" in out


def test_one_mistake_repeated_is_counted_not_printed_a_thousand_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same misspelt key under 2,000 stations printed 10,003 lines, the count last."""
    stations = "".join(
        f"  st-{n}:\n    name: 驿站 {n}\n    model: community_integrated\n    devices:\n"
        f"      a{n}-meter: {{kind: meter, utility: electricity, intervall: 1m}}\n"
        f"      a{n}-gw: {{kind: gateway}}\n"
        for n in range(40)
    )
    path = registry(tmp_path, "version: 1\nstations:\n" + stations + "  st-x:\n    name: X\n")
    code, out = check(tmp_path, capsys, "--registry", path)
    assert code == 2
    assert out.endswith("42 处错误 error(s), 0 处警告 warning(s): 修正后再启动服务 fix them before "
                        "starting a service\n")  # fmt: skip
    # The first three in full, with their lines, the different mistakes, which are not lost
    # among them, and the other 37 in one line.
    assert out.count("unknown key 'intervall'") == 4
    assert f"{path}:7:53 station 'st-0', device 'a0-meter': intervall" in out
    assert f"{path}:19:53 station 'st-2', device 'a2-meter': intervall" in out
    assert "错误 error: 还有 37 处同样的问题 | and 37 more of the same " in out
    assert f"({path}:25:53, {path}:31:53, …)" in out
    assert "`model` is missing" in out
    assert len(out.splitlines()) < 40


def test_a_utf16_file_is_told_how_to_convert_from_utf16(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, capsys, "--registry", registry(tmp_path, GOOD.encode("utf-16")))
    assert code == 2
    assert "the file is saved as UTF-16, not UTF-8" in out
    assert "iconv -f UTF-16 -t UTF-8" in out
    assert "GBK" not in out


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        # `{kind:door_counter}` is one key to YAML.
        (("a-gw: {kind: gateway}", "a-gw: {kind:gateway}"),
         ":8:14 station 'st-a', device 'a-gw': kind:gateway",
         "put a space after the colon: `kind: gateway`"),
        (("a-gw: {kind: gateway}", "a-gw: {kind: gateway　}"),
         ":8:20 station 'st-a', device 'a-gw': kind", "full-width space '　' (U+3000)"),
        (("a-gw: {kind: gateway}", "a-gw:\n        kind: gateway　"),
         ":9:15 station 'st-a', device 'a-gw': kind", "full-width space '　' (U+3000)"),
    ],
)  # fmt: skip
def test_a_glued_colon_and_a_trailing_full_width_space_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], where: str,
    words: str,
) -> None:  # fmt: skip
    assert change[0] in GOOD
    code, out = check(tmp_path, capsys, "--registry", registry(tmp_path, GOOD.replace(*change)))
    assert code == 2
    assert f"stations.yaml{where}" in out
    assert words in out


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")
def test_files_are_parsed_by_libyaml_keeping_lines_and_duplicates() -> None:
    """Five times faster than PyYAML's own parser; every located error above went through it."""
    from waystation import configfile  # noqa: PLC0415 - the module, for its loader

    assert configfile._FastLoader.__name__ == "CSafeLoader"
    doc = configfile.parse_text(GOOD + "  st-a:\n    name: again\n", "s.yaml")
    [twice] = doc.duplicates
    assert (twice.line, twice.column, twice.code) == (9, 3, "duplicate_key")
    assert doc.keys[("stations", "st-a", "name")] == (10, 5)
