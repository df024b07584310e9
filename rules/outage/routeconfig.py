"""The routing tree in the rules settings (`route:`), after Alertmanager's `route`.

A route matches an alert's labels (`station`, `operator`, `union`, `model`,
`rule`, `severity`, `kind`, `device`) with `match` (a label's value, or a
list of values any of which may match) and `matchers` (Alertmanager's
`label = value`, `!=`, `=~` and `!~`, regular expressions anchored at both
ends); a label an alert does not have is the empty string, so `kind != meter`
matches a station's own alerts. A route names its `channels` (else its
parent's), may override `group_wait`, `group_interval` and `repeat_interval`
(else its parent's; the root's come from `timing`), may `continue` to its
next sibling, and may escalate: an alert still firing `escalate_after` after
it fired (and not silenced) also goes to `escalate_to`, once. Children
inherit the escalation too, unless they set their own.

Only the shape is checked here (and channel names, in `RulesConfig`); what
needs the registry (unknown parties and stations, routes no alert can reach)
is `rules.outage.routecheck`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from rules.outage.labelregex import LabelRegexError, LabelRegexUnavailable, compile_label_regex
from waystation.configerror import Invalid, Text
from waystation.durations import DurationField

__all__ = ["Label", "MatchOp", "Matcher", "RouteConfig", "parse_matcher"]


class Label(StrEnum):
    """What a route can match on: an alert's labels."""

    STATION = "station"
    OPERATOR = "operator"  # the party running the station
    UNION = "union"  # the station's union (the registry's only union when it names none)
    MODEL = "model"  # the operating model
    RULE = "rule"
    SEVERITY = "severity"
    KIND = "kind"  # the device's kind; empty for a station's own alerts
    DEVICE = "device"


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


class Matcher(NamedTuple):
    label: Label
    op: MatchOp
    value: str

    def matches(self, labels: dict[Label, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op is MatchOp.EQ:
            return have == self.value
        if self.op is MatchOp.NE:
            return have != self.value
        found = compile_label_regex(self.value).fullmatch(have) is not None
        return found if self.op is MatchOp.RE else not found

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


_MATCHER_RE = re.compile(r'^\s*([A-Za-z_]+)\s*(=~|!~|!=|=)\s*(?:"(.*)"|(.*?))\s*$')
_LABELS = ", ".join(label.value for label in Label)


def _unknown_label(name: str) -> Invalid:
    return Invalid(
        Text(f"an alert has no label {name!r}", f"告警没有 {name!r} 这个标签"),
        Text(f"labels: {_LABELS}", f"可用的标签：{_LABELS}"),
        code="unknown_label",
    )


def _regex(value: str) -> str:
    try:
        compile_label_regex(value)
    except LabelRegexUnavailable:
        raise Invalid(
            Text("regular expressions in routes need the server install (google-re2)",
                 "路由里的正则表达式需要服务器端的安装（google-re2）"),
            Text("check the rules config where the rules service runs, or pip install "
                 "'waystation[server]'", "在运行告警服务的机器上检查，或安装 'waystation[server]'"),
            code="regex_needs_server",
        ) from None  # fmt: skip
    except LabelRegexError as exc:
        raise Invalid(
            Text(f"{value!r} is not a regular expression: {exc}",
                 f"{value!r} 不是正则表达式：{exc}"),
            Text("the pattern must match the whole value, like xiaoge-.* or critical|warning "
                 "(RE2 syntax, as in Alertmanager: no look-arounds or back-references)",
                 "模式要匹配整个值，如 xiaoge-.* 或 critical|warning"
                 "（RE2 语法，与 Alertmanager 相同：不支持前后查找和反向引用）"),
            code="bad_regex",
        ) from None  # fmt: skip
    return value


# What a Chinese input method types for `"`, `=`, `!` and `~`; never in an id.
_WIDE = "“”‘’＂＝！～"


def parse_matcher(text: object) -> Matcher:
    """`operator = xiaoge-coffee`, `severity != info`, `station =~ "dachuan-rider-.*"`."""
    if isinstance(text, str) and (wide := sorted({c for c in text if c in _WIDE})):
        shown = " ".join(wide)
        raise Invalid(
            Text(f"{text!r} has full-width punctuation ({shown}): it would be compared as "
                 "part of the value", f"{text!r} 里有全角标点（{shown}），会被当成值的一部分"),
            Text('write the quotes and operators in ASCII: station =~ "dachuan-.*"',
                 '引号和运算符用半角（英文）字符：station =~ "dachuan-.*"'),
            code="wide_punctuation",
        )  # fmt: skip
    m = _MATCHER_RE.match(str(text))
    if not isinstance(text, str) or m is None:
        raise Invalid(
            Text(f"{text!r} is not a matcher like operator = xiaoge-coffee",
                 f"{text!r} 不是匹配条件，应写成 operator = xiaoge-coffee 这样"),
            Text("label, then =, !=, =~ or !~, then the value (quoted if it has spaces)",
                 "标签、再写 =、!=、=~ 或 !~、再写值（有空格时加引号）"),
            code="bad_matcher",
        )  # fmt: skip
    name, op, quoted, bare = m.groups()
    if name not in Label.__members__.values():
        raise _unknown_label(name)
    value = quoted if quoted is not None else bare
    if op in (MatchOp.RE, MatchOp.NRE):
        _regex(value)
    return Matcher(Label(name), MatchOp(op), value)


def _values(value: object) -> object:
    """`match:` values: one string, or a list of strings any of which may match."""
    return [value] if isinstance(value, str) else value


def _match_keys(value: object) -> object:
    if isinstance(value, dict):
        for key in value:
            if key not in Label.__members__.values():
                raise Invalid(problems=[((key,), _unknown_label(str(key)))])
    return value


_ROUTE_NAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _route_name(value: str) -> str:
    """A route's `name`: part of its groups' ids in the state file (`root/name`)."""
    if _ROUTE_NAME_RE.fullmatch(value) is None:
        raise Invalid(
            Text(f"{value!r} is not a route name", f"{value!r} 不能用作路由名"),
            Text("route names are ASCII letters, digits, '_', '.', ':' and '-', at most 64 "
                 "(e.g. xiaoge-coffee); the party's Chinese name is in the registry",
                 "路由名只能用英文字母、数字、“_”“.”“:”“-”，最长 64 个（如 xiaoge-coffee）；"
                 "承担方的中文名写在站点登记文件里"),
            code="bad_route_name",
        )  # fmt: skip
    return value


MatcherField = Annotated[Matcher, BeforeValidator(parse_matcher)]
MatchValues = Annotated[list[str], BeforeValidator(_values), Field(min_length=1)]


class RouteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Names the route in `rules routes` output and in the state file (else its matchers do).
    name: Annotated[str, AfterValidator(_route_name)] | None = None
    match: Annotated[dict[Label, MatchValues], BeforeValidator(_match_keys)] = Field(
        default_factory=dict
    )
    matchers: list[MatcherField] = Field(default_factory=list)
    channels: list[str] | None = None
    continue_: bool = Field(default=False, alias="continue")
    group_wait: DurationField | None = None
    group_interval: DurationField | None = None
    repeat_interval: DurationField | None = None
    escalate_after: DurationField | None = None
    escalate_to: list[str] | None = None
    routes: list[RouteConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_channel(self) -> RouteConfig:
        """`channels: []` or `escalate_to: []` would drop alerts without a word."""
        empty = [key for key in ("channels", "escalate_to") if getattr(self, key) == []]
        if empty:
            raise Invalid(problems=[((key,), Invalid(
                Text("channels is empty: the alerts this route takes would go nowhere",
                     "channels 是空的：这条路由接走的告警哪里都不会发")
                if key == "channels" else
                Text("escalate_to is empty: this route's escalations would go nowhere",
                     "escalate_to 是空的：这条路由的升级通知哪里都不会发"),
                Text("name at least one channel (a `log` channel keeps them out of the chat "
                     "groups but on record), or leave the key out to inherit the parent's",
                     "至少写一个通道（只想记录、不发群时用 `log` 通道），或者不写这一项，"
                     "沿用上级路由的"),
                code="no_channel",
            )) for key in empty])  # fmt: skip
        return self

    @model_validator(mode="after")
    def _escalation(self) -> RouteConfig:
        if (self.escalate_after is None) != (self.escalate_to is None):
            given, missing = (
                ("escalate_after", "escalate_to")
                if self.escalate_to is None
                else ("escalate_to", "escalate_after")
            )
            raise Invalid(
                Text(f"{given} needs {missing}", f"写了 {given} 就要同时写 {missing}"),
                Text("e.g. escalate_after: 2h and escalate_to: [union-dingtalk]",
                     "例如 escalate_after: 2h 和 escalate_to: [union-dingtalk]"),
                code="escalation_incomplete",
            )  # fmt: skip
        return self

    @property
    def has_matchers(self) -> bool:
        return bool(self.match or self.matchers)

    def all_matchers(self) -> list[Matcher | tuple[Label, list[str]]]:
        """`match` entries (label, values) and `matchers`, in the file's order of kinds."""
        return [*self.match.items(), *self.matchers]

    def key(self) -> str:
        """How the route is known when it has no name: its matchers."""
        if self.name:
            return self.name
        parts = [f"{label}={'|'.join(values)}" for label, values in self.match.items()] + [
            str(m) for m in self.matchers
        ]
        return ",".join(parts) or "*"


def root_problems(route: RouteConfig) -> list[tuple[tuple[str | int, ...], Invalid]]:
    """The root takes every alert: no matchers, no `continue`, and it names channels."""
    out: list[tuple[tuple[str | int, ...], Invalid]] = []
    if route.has_matchers:
        out.append((("match" if route.match else "matchers",), Invalid(
            Text("the root route takes every alert: it has no matchers",
                 "根路由接收所有告警：不能写匹配条件"),
            Text("move the matchers into a route under `routes:`",
                 "把匹配条件移到 `routes:` 下的子路由"),
            code="root_matchers",
        )))  # fmt: skip
    if route.continue_:
        out.append((("continue",), Invalid(
            Text("the root route has no siblings to continue to", "根路由没有可继续匹配的同级路由"),
            code="root_continue",
        )))  # fmt: skip
    if not route.channels:
        out.append((("channels",), Invalid(
            Text("the root route must name channels: they get every alert no other route takes",
                 "根路由必须写 channels：其他路由不接的告警都发到这里"),
            Text("e.g. channels: [district-log]", "例如 channels: [district-log]"),
            code="root_channels",
        )))  # fmt: skip
    return out


NEVER = timedelta(days=36500)  # an escalation group never repeats
