"""Notification text in Chinese or English, naming stations by their registry names."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from rules.outage.alerts import Alert, Notice
from rules.outage.details import detail_text
from rules.outage.detect import SERVICE_GROUP, Rule
from waystation.language import Language
from waystation.localtime import local_text
from waystation.registry import Registry

__all__ = ["RULE_TEXT", "WORDS", "Renderer"]

RULE_TEXT: dict[Language, dict[Rule, str]] = {
    "zh": {
        Rule.STATION_DOWN: "驿站整体离线",
        Rule.AGENT_OFFLINE: "采集网关离线",
        Rule.DEVICE_SILENT: "设备失联",
        Rule.DISPENSER_COLD: "饮水机水温不足",
        Rule.DEVICE_FAULT: "设备故障",
        Rule.METER_STUCK: "总电表停走",
        Rule.DOOR_SILENT: "营业时间无人进出",
        Rule.MONITORING_LOST: "监控中断：告警服务收不到消息服务器的数据，驿站状态未知",
        Rule.CHANNEL_FAILING: "告警通道发送失败",
    },
    "en": {
        Rule.STATION_DOWN: "station down",
        Rule.AGENT_OFFLINE: "edge agent offline",
        Rule.DEVICE_SILENT: "device silent",
        Rule.DISPENSER_COLD: "dispenser not hot",
        Rule.DEVICE_FAULT: "device fault",
        Rule.METER_STUCK: "main meter stuck",
        Rule.DOOR_SILENT: "no visits in opening hours",
        Rule.MONITORING_LOST: "monitoring lost: the rules service gets no data from the MQTT "
        "broker; stations' state unknown",
        Rule.CHANNEL_FAILING: "notification channel failing",
    },
}
WORDS: dict[Language, dict[str, str]] = {
    "zh": {"firing": "告警", "resolved": "已恢复", "repeat": "仍在告警", "since": "自",
           "stations": "个驿站", "fired_resolved": "曾告警，已恢复", "service": "驿站告警服务",
           "sep": "，", "semi": "；", "colon": "：", "escalated": "升级", "firing_for": "已告警",
           "run_by": "运营方", "no_operator": "登记表未写运营方", "hours": "小时",
           "minutes": "分钟", "more": "……另有 {n} 条未列出（消息长度所限）"},
    "en": {"firing": "FIRING", "resolved": "RESOLVED", "repeat": "STILL FIRING", "since": "since",
           "stations": "stations", "fired_resolved": "FIRED AND RESOLVED",
           "service": "Waystation alerting", "sep": ", ", "semi": "; ", "colon": ": ",
           "escalated": "ESCALATED",
           "firing_for": "firing for", "run_by": "run by",
           "no_operator": "no operator in the registry", "hours": "h", "minutes": "min",
           "more": "… and {n} more line(s) not shown (the message size limit)"},
}  # fmt: skip


class Renderer:
    def __init__(self, registry: Registry, language: Language) -> None:
        self.registry = registry
        self.language = language

    def station_name(self, station: str) -> str:
        if station == SERVICE_GROUP:
            return WORDS[self.language]["service"]
        spec = self.registry.stations.get(station)
        return spec.name if spec else station

    def _time(self, station: str, ms: int) -> str:
        """Month, day and time in the station's zone, with its offset (`11-25 08:00 +08:00`)."""
        spec = self.registry.stations.get(station)
        tz = ZoneInfo((spec.timezone if spec else None) or self.registry.timezone)
        return local_text(ms, tz, year=False)

    def alert_line(self, alert: Alert, *, with_start: bool = False) -> str:
        words = WORDS[self.language]
        what = RULE_TEXT[self.language][alert.rule]
        where = f" {alert.device}" if alert.device else ""
        said = detail_text(alert.rule, alert.detail, self.language)
        detail = (f"（{said}）" if self.language == "zh" else f" ({said})") if said else ""
        began = self._time(alert.station, alert.since_ms)
        if alert.resolved_ms is None:
            return f"{what}{where}{detail}{words['sep']}{words['since']} {began}"
        ended = self._time(alert.station, alert.resolved_ms)
        span = f"{began} → {ended}" if with_start else ended
        return f"{what}{where}{detail}{words['sep']}{span}"

    def title(self, notice: Notice) -> str:
        words = WORDS[self.language]
        state = (
            words["escalated" if notice.escalation else "repeat" if notice.repeat else "firing"]
            if notice.still_firing
            else words["resolved"]
        )
        return f"[{state}] {self.station_name(notice.station)}"

    def duration(self, ms: int) -> str:
        """`2 小时 5 分钟` / `2 h 5 min`: how long an escalated alert has been firing."""
        words = WORDS[self.language]
        minutes = max(ms, 0) // 60_000
        hours, minutes = divmod(minutes, 60)
        if hours:
            return f"{hours} {words['hours']} {minutes} {words['minutes']}"
        return f"{minutes} {words['minutes']}"

    def operator_name(self, station: str) -> str:
        """Who runs the station: its operator party's name, from the registry."""
        spec = self.registry.stations.get(station)
        party = spec.operator if spec else None
        if party is None:
            return WORDS[self.language]["no_operator"]
        found = self.registry.parties.get(party)
        return found.name if found else party

    def _escalated(self, notice: Notice, alert: Alert) -> str:
        words = WORDS[self.language]
        at = notice.at_ms if notice.at_ms is not None else alert.since_ms
        began = alert.fired_ms if alert.fired_ms is not None else alert.since_ms
        lasted = self.duration(at - began)
        return f"- {self.alert_line(alert)}{words['semi']}{words['firing_for']} {lasted}"

    def lines(self, notice: Notice) -> list[str]:
        words = WORDS[self.language]
        fired_here = {(a.key, a.since_ms) for a in notice.firing}
        if notice.escalation:
            out = [self._escalated(notice, a) for a in notice.still_firing]
            out.append(f"- {words['run_by']}{words['colon']}{self.operator_name(notice.station)}")
        else:
            out = [f"- {self.alert_line(a)}" for a in notice.still_firing]
        for a in notice.resolved:
            if (a.key, a.since_ms) in fired_here:  # its firing never went out: say both
                out.append(f"- {words['fired_resolved']}: {self.alert_line(a, with_start=True)}")
            else:
                out.append(f"- {words['resolved']}: {self.alert_line(a)}")
        return out

    def text(self, notices: Sequence[Notice], max_bytes: int | None = None) -> tuple[str, str]:
        """(title, plain text body) of one message carrying one or many station notices;
        the body cut to `max_bytes` (UTF-8) by leaving out lines, said in the last one."""
        if len(notices) == 1:
            return self.title(notices[0]), self._fit([], [([], self.lines(notices[0]))], max_bytes)
        words = WORDS[self.language]
        firing = sum(1 for n in notices if n.still_firing)
        title = (
            f"[{words['firing']}] {firing} {words['stations']}"
            if firing
            else (f"[{words['resolved']}] {len(notices)} {words['stations']}")
        )
        blocks = [([self.title(n)], self.lines(n)) for n in notices]
        return title, self._fit([], blocks, max_bytes)

    def markdown(self, notices: Sequence[Notice], max_bytes: int | None = None) -> tuple[str, str]:
        """(title, markdown), the markdown cut to `max_bytes` like `text`."""
        title, _ = self.text(notices)
        head = [f"### {title}"] if len(notices) > 1 else []
        blocks = [([f"**{self.title(n)}**"], self.lines(n)) for n in notices]
        return title, self._fit(head, blocks, max_bytes)

    def _fit(
        self, head: list[str], blocks: list[tuple[list[str], list[str]]], max_bytes: int | None
    ) -> str:
        """Join; over `max_bytes`, drop the last lines of the longest station until it fits,
        each station saying how many of its lines were left out."""
        kept = [list(lines) for _, lines in blocks]
        cut = [0] * len(blocks)
        more = WORDS[self.language]["more"]

        def joined() -> str:
            out = list(head)
            for (header, _), lines, n in zip(blocks, kept, cut, strict=True):
                out += header + lines + ([f"- {more.format(n=n)}"] if n else [])
            return "\n".join(out)

        text = joined()
        while max_bytes is not None and len(text.encode()) > max_bytes:
            longest = max(range(len(kept)), key=lambda i: len(kept[i]), default=None)
            if longest is None or not kept[longest]:
                break  # nothing left to leave out: the headers alone are too long
            kept[longest].pop()
            cut[longest] += 1
            text = joined()
        return text
