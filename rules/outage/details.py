"""An alert's detail: stored as a language-neutral token, shown in the reader's language.

The detector says what it saw as a token (`devices_down:3/3`, `silent`,
`temp_c:42.0`); the state file, the webhook's JSON and the MQTT alert carry
the token, and `detail_text` words it for a person. What a device or a
server said itself (a fault code, a channel's error, the broker's address)
cannot be translated: it is quoted as it came, 「E12」 in Chinese.
Details written by earlier releases (English phrases) are read too.
"""

from __future__ import annotations

import re

from rules.outage.detect import Rule
from waystation.language import Language

__all__ = ["DETAIL_TEXT", "detail_text", "quote"]

# token → wording per language; `{0}` is the token's argument.
DETAIL_TEXT: dict[Language, dict[str, str]] = {
    "zh": {
        "devices_down": "{0} 台设备离线",
        "agent_offline": "其采集网关离线",
        "agents_offline": "全部 {0} 个采集网关离线",
        "offline": "已报离线",
        "silent": "无数据上报",
        "temp_c": "水温 {0} ℃",
        "loads_kwh": "期间分路用电 {0} 千瓦时",
    },
    "en": {
        "devices_down": "{0} devices down",
        "agent_offline": "its agent is offline",
        "agents_offline": "all {0} agents offline",
        "offline": "reported offline",
        "silent": "silent",
        "temp_c": "{0} °C",
        "loads_kwh": "loads +{0} kWh",
    },
}
# Raw text from outside (a device's fault code, a server's error), per rule.
RAW_TEXT: dict[Language, dict[Rule, str]] = {
    "zh": {
        Rule.DEVICE_FAULT: "故障码{0}",
        Rule.MONITORING_LOST: "服务器{0}",
        Rule.CHANNEL_FAILING: "最近一次错误：{0}",
    },
    "en": {
        Rule.DEVICE_FAULT: "code {0}",
        Rule.MONITORING_LOST: "broker {0}",
        Rule.CHANNEL_FAILING: "last error: {0}",
    },
}
# monitoring_lost connected but blind: `no_probe:<broker>` (the rules' own probe does
# not come back: an account that may not read) or `not_subscribed:<broker>`.
BLIND_TEXT: dict[Language, dict[str, str]] = {
    "zh": {
        "no_probe": "已连上，但收不到任何消息（账号无权读取？）",
        "not_subscribed": "已连上，但订阅被拒绝",
    },
    "en": {
        "no_probe": "connected, but no message comes through (an account that may not read?)",
        "not_subscribed": "connected, but the subscription was refused",
    },
}
_BLIND = re.compile(r"^(no_probe|not_subscribed):(.+)$")
_LEGACY = [  # what releases before tokens stored, as their tokens
    (re.compile(r"^(\d+/\d+) devices down$"), "devices_down"),
    (re.compile(r"^its agent is offline$"), "agent_offline"),
    (re.compile(r"^all (\d+) agents offline$"), "agents_offline"),
    (re.compile(r"^(-?[\d.]+) °C$"), "temp_c"),
    (re.compile(r"^loads \+([\d.]+) kWh$"), "loads_kwh"),
]
NO_CODE = "fault"  # a fault event that carried no code (observations' placeholder)
_TOKEN = re.compile(r"^([a-z_]+)(?::(.*))?$")


def quote(raw: str, language: Language) -> str:
    """Text that stays as it came, marked as such for the reader."""
    return f"「{raw}」" if language == "zh" else f'"{raw}"'


def _token(detail: str) -> tuple[str, str] | None:
    for pattern, token in _LEGACY:
        if m := pattern.match(detail):
            return token, (m.group(1) if m.groups() else "")
    m = _TOKEN.match(detail)
    if m and m.group(1) in DETAIL_TEXT["en"]:
        return m.group(1), m.group(2) or ""
    return None


def detail_text(rule: Rule, detail: str, language: Language) -> str:
    """The detail of an alert in `language` ("" when there is none)."""
    if not detail:
        return ""
    raw = RAW_TEXT[language].get(rule)
    if rule is Rule.DEVICE_FAULT and detail == NO_CODE:
        return ""
    if rule is Rule.MONITORING_LOST and (blind := _BLIND.match(detail)):
        sep = "：" if language == "zh" else ": "
        broker = raw.format(quote(blind.group(2), language)) if raw else blind.group(2)
        return f"{broker}{sep}{BLIND_TEXT[language][blind.group(1)]}"
    if raw is not None:
        return raw.format(quote(detail, language))
    token = _token(detail)
    if token is None:  # unknown to this release: shown as it is, quoted
        return quote(detail, language)
    return DETAIL_TEXT[language][token[0]].format(token[1])
