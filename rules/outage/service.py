"""`waystation rules`: the MQTT stream in, alerts out.

Threads: the MQTT session's network thread only parses messages and updates
the observations (under a lock); one pass thread (`PassLoop`) runs the passes
(detect → lifecycle → persist with the notices to send → wake the channels)
every `scan_every`, soon after an agent's will, and when a group's timer is
due; each channel sends from its own thread, from the state database.
APScheduler runs the hourly `station_info` and the monthly allocation. The
subscription is the service's own, not a shared one: every rules instance
sees every station.

No data, no verdict: while the stream is not proven (disconnected, not
subscribed, or the rules' own probe does not come back) and, per device, for
its grace after that (its agent's reconnect backoff plus its interval, or
`reconnect_grace`), missing readings and statuses raise no new alert (firing
ones stay until data clears them). An agent's will counts once a probe sent
after it came back (`rules.outage.brokerwatch`); the wills that arrive with the
loss of our own connection, or as retained messages while we catch up, are
held until the agents had their chance to return, and an agent back within
that raises nothing. Blind for longer than `monitoring_lost_after` is itself
one alert, `monitoring_lost`.

On start: alerts and group timers come back from the state file, last-seen
times from InfluxDB, and the brokers' retained status messages say which
agents are offline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client.registry import Collector

from rules.outage.alerts import AlertBook, AlertState, Notice, Transition
from rules.outage.brokerwatch import FIRST_PROBE_MS, PROBE_STALE_MS, BrokerWatch, Cause
from rules.outage.channels.base import ChannelContext, ChannelSender
from rules.outage.channels.factory import build_senders
from rules.outage.config import RulesConfig
from rules.outage.detect import SERVICE_GROUP, Condition, Rule, detect, withhold_absence
from rules.outage.messages import Renderer
from rules.outage.metrics import RulesCollector
from rules.outage.notices import route
from rules.outage.observations import Observations
from rules.outage.passloop import PassLoop
from rules.outage.restore import restore_beliefs
from rules.outage.routing import Routing, Timers
from rules.outage.statedb import RulesState, StateError, StateLock
from waystation.backoff import Backoff
from waystation.contract import (
    STATIONS_FILTER,
    Channel,
    ContractError,
    DeadLetterCode,
    Kind,
    StatusState,
    device_topic,
    parse_event,
    parse_readings,
    parse_status,
    probe_topic,
)
from waystation.contract import parse_topic as parse_contract_topic
from waystation.fastcontract import data_dict, fast_readings
from waystation.lineprotocol import encode_line
from waystation.logthrottle import Repeats, format_duration
from waystation.mqttsession import (
    RECONNECT_MAX_S,
    Engine,
    InboundMessage,
    PublishRefused,
    SessionCallbacks,
    SessionOptions,
    open_session,
)
from waystation.registry import Registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore, StoreError

__all__ = ["RulesService"]

log = logging.getLogger("waystation.rules")

SETTLE_S = 1.0  # after starting: time for the retained statuses to arrive before the first pass
# Without `reconnect_grace`: the agents' longest reconnect delay and a little more
# for the `online` an agent publishes as it connects. A device's own grace adds
# its reporting interval to the backoff.
AGENT_BACK_S = 2.0
WARM_WINDOW = "72h"  # how far back warm-up looks (InfluxDB 3 reads at most ~72 h a query)
MAX_UNWRITTEN = 10_000  # alert points kept for InfluxDB while it is down
SUMMARY_EVERY_S = 600.0  # one INFO line of figures every 10 minutes; nothing else in calm
GIVEN_UP_KEPT = timedelta(days=7)  # given-up notices stay this long for an operator to see


class RulesService:
    def __init__(
        self,
        mqtt_settings: MqttSettings,
        registry: Registry,
        config: RulesConfig,
        state_path: Path,
        *,
        store: InfluxStore | None = None,
        client_id: str = "waystation-rules-1",
        topic_filter: str = STATIONS_FILTER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.config = config
        self.store = store
        self.topic_filter = topic_filter
        self.clock = clock
        self._state_lock = StateLock(state_path)  # StateInUse: another service runs on it
        self.state = RulesState(state_path)
        self.renderer = Renderer(registry, config.language or registry.language)
        self._mqtt_settings = mqtt_settings
        self._lock = threading.Lock()  # observations, the book and the connection's state
        self._pass_lock = threading.Lock()
        self._unwritten: list[str] = []
        self._unsaved: list[tuple[str, Notice]] = []  # notices the state file did not take yet
        self.state_failing_since: float | None = None  # monotonic
        self._history_backoff = Backoff(1.0, 60.0, 0.5)
        self._history_next_try = 0.0
        self._repeats = Repeats(log)
        self.messages = 0  # read off the broker (network thread only)
        self.invalid_messages = 0
        # Every registry device's telemetry topic: the fast path's only door.
        self._telemetry_topics = {
            device_topic(station, device, Channel.TELEMETRY): (device, spec.kind)
            for station, s in registry.stations.items()
            for device, spec in s.devices.items()
        }
        self.wills_held = 0  # agents' offline statuses held for the grace period
        # Messages whose device the registry does not put under the topic's station
        # (`wrong_station`) or does not know (`unknown_device`): ignored, as ingest
        # dead-letters them. A station's credentials may publish under its own
        # topic only, so this is how one station could speak for another.
        self.ignored: Counter[DeadLetterCode] = Counter()
        self.passes = 0
        self.notices_pruned = 0
        self.pass_seconds = 0.0
        th = config.thresholds
        self.started_ms = self._now_ms()
        self.obs = Observations.from_registry(
            registry, th.silent_intervals, th.dispenser_min_temp_c, self.started_ms
        )
        self.book = AlertBook()
        self.grace_ms, graces = self._graces()
        self.watch = BrokerWatch(
            self.started_ms,
            will_grace_ms=self.grace_ms,
            base_grace_ms=self.grace_ms,
            lost_after_ms=_ms(th.monitoring_lost_after),
            device_grace_ms=graces,
            stale_ms=max(PROBE_STALE_MS, 3 * _ms(config.timing.scan_every)),
        )
        self._will_probe: int | None = None  # a will waits for this probe to come back
        self._last_summary = time.monotonic()
        self.probe_topic = probe_topic(client_id)
        subscriptions = (topic_filter, self.probe_topic)
        self.session = open_session(
            mqtt_settings,
            SessionOptions(
                client_id=client_id,
                label="rules",
                subscriptions=subscriptions,
                engine=Engine.SOCKET,  # reads the whole stream: the engine for that
            ),
            SessionCallbacks(
                on_message=self._on_message,
                on_connected=self._on_connected,
                on_disconnected=self._on_disconnected,
            ),
        )
        timing = config.timing
        self.senders: list[ChannelSender] = build_senders(
            config.channels,
            self.renderer,
            ChannelContext(self.session),
            self.state,
            retry_for_s=timing.notice_retry_for.total_seconds(),
            failing_after_s=timing.channel_failing_after.total_seconds(),
        )
        # The hourly station_info and the monthly allocation; their per-run lines are off.
        if logging.getLogger("apscheduler").level == logging.NOTSET:
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self._passes = PassLoop(
            self.run_pass, timing.scan_every.total_seconds(), first_in_s=SETTLE_S + 1
        )
        self.routing = Routing.build(
            registry,
            config.route,
            [c.label for c in config.channels],
            Timers(_ms(timing.group_wait), _ms(timing.group_interval), _ms(timing.repeat_interval)),
        )
        self._senders_by_label = {sender.label: sender for sender in self.senders}
        self.book.adopt(self.routing, self._now_ms())
        self._pending_ms = {
            Rule.DEVICE_SILENT.value: _ms(th.station_window),
            **{rule: _ms(d) for rule, d in timing.pending_for.items()},
        }

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _graces(self) -> tuple[int, dict[str, int]]:
        """The base grace, and each device's and station's (`station:{id}`).

        As configured for all; or the agents' longest reconnect delay (the wills,
        the base), plus its own interval for a device, and for a station its
        agents' (a station without agents: its slowest device's).
        """
        grace = self.config.thresholds.reconnect_grace
        if grace is not None:
            return _ms(grace), {}
        base = int((RECONNECT_MAX_S + AGENT_BACK_S) * 1000)
        out: dict[str, int] = {}
        for station_id, station in self.registry.stations.items():
            mine = {
                device: max(base, int((RECONNECT_MAX_S + spec.interval.total_seconds()) * 1000))
                for device, spec in station.devices.items()
            }
            agents = [mine[d] for d, sp in station.devices.items() if sp.kind is Kind.GATEWAY]
            out |= mine
            station_grace = min(agents) if agents else max(mine.values(), default=base)
            out[f"station:{station_id}"] = station_grace
        return base, out

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.book = self.state.load_book()
        self.book.adopt(self.routing, self._now_ms())
        self._warm_up()
        with self._lock:
            restore_beliefs(self.obs, self.book, self.config.thresholds)
        self._orphans()
        for sender in self.senders:
            sender.start()
        self.session.start()
        self._passes.start()
        self.scheduler.add_job(self.prune, "interval", hours=1, id="prune")
        self.scheduler.add_job(
            self.record_stations,
            "interval",
            hours=1,
            id="stations",
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()

    def _orphans(self) -> None:
        labels = {s.label for s in self.senders}
        for channel, (waiting, _) in self.state.notice_counts().items():
            if channel not in labels and waiting:
                log.warning(
                    "%d notice(s) wait for channel %r, which is no longer configured; "
                    "they stay in %s for %s, then are dropped",
                    waiting,
                    channel,
                    self.state.path,
                    format_duration(self.config.timing.notice_retry_for.total_seconds()),
                )
        self.prune()

    def prune(self) -> None:
        """Drop given-up notices after a week, and those of removed channels once their
        retry time is over (hourly, and at start): the state file does not grow for ever."""
        now = self._now_ms()
        try:
            pruned = self.state.prune(
                now - _ms(GIVEN_UP_KEPT),
                [s.label for s in self.senders],
                now - _ms(self.config.timing.notice_retry_for),
            )
        except StateError as exc:
            self._repeats.warning("prune", "old notices not pruned (%s); next hour", exc)
            return
        self.notices_pruned += pruned
        if pruned:
            log.info("pruned %d old notice(s) from the state file", pruned)

    def record_stations(self) -> None:
        """`station_info` for the district map and pickers, refreshed hourly.

        Its name, model, `label` (`id|name`, which the dashboards' station
        picker shows as the name) and its position in WGS-84 and in GCJ-02.
        """
        if self.store is None:
            return
        now = self._now_ms()
        lines = []
        for station_id, spec in self.registry.stations.items():
            fields: dict[str, str | float] = {
                "name": spec.name,
                "model": spec.model.value,
                "label": f"{station_id}|{spec.name}",
            }
            if spec.location is not None:  # for WGS-84 tiles, and for Gaode's (GCJ-02)
                lat, lon = spec.location.to("wgs84")
                lat_gcj, lon_gcj = spec.location.to("gcj02")
                fields |= {"lat": lat, "lon": lon, "lat_gcj02": lat_gcj, "lon_gcj02": lon_gcj}
            lines.append(encode_line("station_info", {"station": station_id}, fields, now))
        try:
            self.store.write_lines(lines)
        except StoreError as exc:
            log.warning("station_info not written (%s); next hour", exc)

    def wait_subscribed(self, timeout_s: float = 10.0) -> bool:
        return self.session.wait_subscribed(timeout_s)

    def stop(self) -> None:
        self._passes.stop()
        self.scheduler.shutdown(wait=True)
        for sender in self.senders:
            sender.stop()
        self.session.stop()
        self.state.close()
        self._state_lock.release()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- what /healthz, /readyz and /metrics read (HTTP thread) -------------------------

    @property
    def alive(self) -> bool:
        """The pass thread runs and has run lately, the state file takes writes, and every
        channel's thread is up."""
        last = self._passes.last_pass_at
        every = self.config.timing.scan_every.total_seconds()
        recent = last is not None and time.monotonic() - last < max(10 * every, 30.0)
        return (
            self._passes.alive
            and recent
            and self.state_failing_since is None
            and all(s.alive for s in self.senders)
        )

    @property
    def passes_failed(self) -> int:
        return self._passes.failed

    @property
    def ready(self) -> bool:
        return self.alive and self.session.subscribed

    @property
    def giving_verdicts(self) -> bool:
        with self._lock:
            return self._verdicts(self._now_ms())

    @property
    def stream_proven(self) -> bool:
        """Connected, subscribed, and the rules' own probe comes back."""
        with self._lock:
            self._follow(self._now_ms())
            return self.watch.proven

    def alert_counts(self) -> Counter[AlertState]:
        with self._lock:
            return Counter(a.state for a in self.book.alerts.values())

    @property
    def collector(self) -> Collector:
        return RulesCollector(self)

    def _warm_up(self) -> None:
        """Last-seen times from InfluxDB: a device silent since before the restart stays silent."""
        if self.store is None:
            return
        kinds = sorted({spec.kind.value for st in self.registry.stations.values()
                        for spec in st.devices.values()})  # fmt: skip
        last: dict[str, int] = {}
        try:
            for kind in kinds:
                query = (  # kinds come from the contract's enum
                    f'SELECT last("seq") FROM "{kind}" '  # noqa: S608
                    f'WHERE time > now() - {WARM_WINDOW} GROUP BY "device"'
                )
                for series in self.store.query(query):
                    device = series.tags.get("device")
                    if device and series.values:
                        last[device] = int(series.values[0][0])
        except StoreError as exc:
            log.warning("warm-up from InfluxDB failed (%s); devices count as seen now", exc)
            return
        with self._lock:
            self.obs.warm(last)
        log.info("warm-up: last-seen times of %d devices from InfluxDB", len(last))

    # --- MQTT (the session's thread: parse and record, nothing more) ----------------------

    def _follow(self, now_ms: int) -> None:
        """Bring the watch up to now (under the lock)."""
        self.watch.subscribed = self.session.subscribed
        self.watch.update(now_ms)

    def _verdicts(self, now_ms: int) -> bool:
        """May missing data raise alerts now? The stream proven, and the base grace over."""
        self._follow(now_ms)
        return self.watch.verdicts(now_ms)

    def _probe(self) -> None:
        """Publish the next probe to ourselves (QoS 0: while disconnected, nothing is queued)."""
        with self._lock:
            number = self.watch.next_probe(self._now_ms())
        with suppress(PublishRefused):  # the client is stopping, or its queue is full: next time
            self.session.publish(self.probe_topic, str(number), qos=0)

    def _on_connected(self, _session_present: bool) -> None:
        with self._lock:
            self.watch.on_connected(self._now_ms())
        self._probe()

    def _on_disconnected(self) -> None:
        with self._lock:
            now = self._now_ms()
            self.watch.on_disconnected(now)
            held = self.obs.hold_wills()
            self.wills_held += held
        if held:
            self._repeats.warning(
                "held",
                "%d agent will(s) came with the loss of the broker; each is held until the "
                "agents have had %.0f s to come back",
                held,
                self.watch.will_grace_ms / 1000,
            )

    def _on_probe(self, payload: bytes) -> None:
        try:
            number = int(payload)
        except ValueError:
            return  # not ours (only this account may write here)
        with self._lock:
            if not self.watch.probe_returned(number, self._now_ms()):
                return
            self.obs.probe_back = self.watch.probe_back
            confirms = self._will_probe is not None and self._will_probe <= number
            if confirms:
                self._will_probe = None
        if confirms:  # an agent's will is confirmed: its page goes out now
            self._passes.run_in(0)

    def _on_message(self, msg: InboundMessage) -> None:
        self.messages += 1
        if not self._fast_reading(msg):
            self._on_other_message(msg)

    def _fast_reading(self, msg: InboundMessage) -> bool:
        """A plain reading of a registry device, observed on the fast path; else False.

        `waystation.fastcontract` accepts only what the contract certainly does, with
        the same values; everything else takes the full path below, as before.
        """
        hit = self._telemetry_topics.get(msg.topic)
        if hit is None:
            return False
        device, kind = hit
        readings = fast_readings(kind, bytes(msg.payload))
        if readings is None:
            return False
        with self._lock:
            for r in readings:
                self.obs.reading(device, r.ts, data_dict(r))
        return True

    def _on_other_message(self, msg: InboundMessage) -> None:
        if msg.topic == self.probe_topic:
            self._on_probe(bytes(msg.payload))
            return
        try:
            topic = parse_contract_topic(msg.topic)
            if self._ignored(topic.station, topic.device):
                return
            now = self._now_ms()
            if topic.channel is Channel.TELEMETRY:
                readings = parse_readings(bytes(msg.payload))
                with self._lock:
                    for r in readings:
                        self.obs.reading(topic.device, r.ts, r.data.model_dump())
            elif topic.channel is Channel.STATUS:
                if msg.payload:  # empty: a cleared retained status
                    self._on_status(topic.device, msg, now)
            else:
                event = parse_event(bytes(msg.payload))
                with self._lock:
                    self.obs.event(topic.device, event.type, event.detail)
        except ContractError as exc:
            self.invalid_messages += 1  # ingest dead-letters these; rules only skip them
            log.debug("skipping %s: %s", msg.topic, exc)

    def _on_status(self, device: str, msg: InboundMessage, now: int) -> None:
        online = parse_status(bytes(msg.payload)).state is StatusState.ONLINE
        with self._lock:
            # A retained offline found while catching up waits out the grace.
            held = not online and msg.retain and not self._verdicts(now)
            probe = self.watch.probes_sent  # the next probe confirms it
            self.obs.status(device, online, now, held=held, probe=probe)
            if held:
                self.wills_held += 1
            elif not online:
                self._will_probe = max(self._will_probe or 0, probe)
        if not online and not held:  # an agent's will: it counts once the probe is back
            self._probe()

    def _ignored(self, station: str, device: str) -> bool:
        """Count and skip a device the registry does not put under this station."""
        known = self.registry.device(device)
        if known is not None and known[0] == station:
            return False
        code = DeadLetterCode.UNKNOWN_DEVICE if known is None else DeadLetterCode.WRONG_STATION
        self.ignored[code] += 1
        if self.ignored[code] == 1:  # once; the count is in `ignored`
            where = "no station" if known is None else f"station {known[0]}"
            log.warning(
                "ignoring a message for device %s under station %s: the registry puts it "
                "under %s (%s; the next ones are only counted)", device, station, where, code,
            )  # fmt: skip
        return True

    # --- a pass ------------------------------------------------------------------------

    def run_pass(self) -> None:
        """Detect, update the alerts, persist with the notices to send, wake the channels."""
        with self._pass_lock:
            started = time.perf_counter()
            now = self._now_ms()
            timing = self.config.timing
            silenced = self.state.silenced_stations(now)
            with self._lock:
                due = self.watch.probe_due(now)
            if due:
                self._probe()
            with self._lock:
                self._follow(now)
                self._say_stream(now)
                watch = self.watch
                if watch.proven:
                    self.obs.release_held(lambda since: watch.release_due(since, now))
                conditions = detect(self.obs, self.registry, self.config.thresholds, now)
                conditions = withhold_absence(
                    conditions,
                    lambda c: self._firing(c.key) or watch.absence_allowed(_who(c), now),
                )
                conditions.update(self._service_conditions(now))
                transitions = self.book.update(
                    conditions, now, self._pending_ms, silenced.__contains__
                )
                # No data, no verdict: "still firing after 2 h" waits for a proven stream.
                escalate = watch.verdicts(now)
                outgoing = self._outgoing(self.book.due(now, escalate=escalate))
                saved = self._save(outgoing, now)
                next_due = self.book.next_due_ms(escalate=escalate)
            self.passes += 1
            woken = {label for label, _ in saved}
            for sender in self.senders:
                if sender.label in woken:
                    sender.wake()
            self._record(transitions)
            if next_due is not None and next_due - now < _ms(timing.scan_every):
                self._passes.run_in(max(next_due - now, 10) / 1000)
            self.pass_seconds += time.perf_counter() - started
            self._summary()

    def _save(self, outgoing: list[tuple[str, Notice]], now: int) -> list[tuple[str, Notice]]:
        """Persist the book with the notices; on failure keep both in memory and retry next
        pass (the book stays dirty until a save succeeds). The notices that were saved."""
        waiting = [*self._unsaved, *outgoing]
        try:
            self.state.save(self.book, waiting, now_ms=now)
        except StateError as exc:
            self._unsaved = waiting
            if self.state_failing_since is None:
                self.state_failing_since = time.monotonic()
            self._repeats.log(
                logging.ERROR,
                "state",
                "rules state not written (%s): %d notice(s) kept in memory and written as "
                "soon as the state file takes them; /healthz fails until then",
                exc,
                len(waiting),
            )
            return []
        self._unsaved = []
        if self.state_failing_since is not None:
            self.state_failing_since = None
            cleared = self._repeats.clear("state")
            log.warning(
                "rules state written again after %s",
                format_duration(cleared[0] if cleared else 0.0),
            )
        return waiting

    def _outgoing(self, notices: list[Notice]) -> list[tuple[str, Notice]]:
        """Each notice for each channel of its route (what of it that channel should carry)."""
        out = []
        for notice in notices:
            target = self.routing.target(notice.target)
            for label in target.channels if target is not None else ():
                sender = self._senders_by_label[label]
                if routed := route(notice, label, needs_broker=sender.needs_broker):
                    out.append((label, routed))
        return out

    def _firing(self, key: str) -> bool:
        alert = self.book.alerts.get(key)
        return alert is not None and alert.state is AlertState.FIRING

    def _service_conditions(self, now: int) -> dict[str, Condition]:
        """`monitoring_lost` while cut off from the broker; `channel_failing` per failing channel.

        Once firing, each holds until the cause ends (a restart in the middle
        does not resolve it and raise it again).
        """
        out: dict[str, Condition] = {}
        blind_since = self.watch.spell_since_ms
        if blind_since is not None:
            cond = Condition(
                Rule.MONITORING_LOST, SERVICE_GROUP, None, blind_since, self._blind_detail()
            )
            fired = self.book.alerts.get(cond.key)
            if fired is not None and fired.state is AlertState.FIRING:
                out[cond.key] = Condition(
                    cond.rule, cond.station, None, fired.since_ms, fired.detail
                )
            elif self.watch.monitoring_lost(now):
                out[cond.key] = cond
        after_s = self.config.timing.channel_failing_after.total_seconds()
        for sender in self.senders:
            since = sender.failing_since
            if since is None:
                continue
            cond = Condition(
                Rule.CHANNEL_FAILING,
                SERVICE_GROUP,
                sender.label,
                int(since * 1000),
                sender.last_error or "",
            )
            if self._firing(cond.key) or sender.failing_for_s >= after_s:
                out[cond.key] = cond
        return out

    def _blind_detail(self) -> str:
        """The broker, and (a token) why the stream is not proven when the connection is up;
        worded by `rules.outage.details`."""
        cause = self.watch.cause
        if cause == Cause.DISCONNECTED:
            return str(self._mqtt_settings)
        return f"{cause}:{self._mqtt_settings}"

    def _say_stream(self, now_ms: int) -> None:
        """One ERROR when connected but nothing comes through; a WARNING when it does again."""
        w = self.watch
        if w.proven:
            if self._repeats.clear("no data") is not None:
                log.warning("rules: messages from the broker come through again")
            return
        connected_ms = w.connected_ms
        if (
            w.connected
            and w.cause in (Cause.NO_PROBE, Cause.NOT_SUBSCRIBED)
            and connected_ms is not None
            and now_ms - connected_ms >= FIRST_PROBE_MS
        ):
            self._repeats.log(
                logging.ERROR,
                "no data",
                "rules: connected to %s, but %s: no verdicts on missing data until it does "
                "(the account must read stations/# and read and write %s: the wrong "
                "credentials, or broker files from before this version? run broker-config)",
                self._mqtt_settings,
                "the subscription was refused"
                if w.cause == Cause.NOT_SUBSCRIBED
                else f"its own probe on {self.probe_topic} does not come back",
                self.probe_topic,
            )

    def _summary(self) -> None:
        if time.monotonic() - self._last_summary < SUMMARY_EVERY_S:
            return
        self._last_summary = time.monotonic()
        counts = self.alert_counts()
        waiting = sum(w for w, _ in self.state.notice_counts().values())
        log.info(
            "rules: %d passes (%.1f ms each on average), %d alert(s) firing, %d pending; "
            "%d notice(s) sent, %d waiting; broker %s",
            self.passes,
            1000 * self.pass_seconds / max(self.passes, 1),
            counts.get(AlertState.FIRING, 0),
            counts.get(AlertState.PENDING, 0),
            sum(s.stats.notices for s in self.senders),
            waiting,
            "connected" if self.session.connected else "NOT connected",
        )

    def _record(self, transitions: list[Transition]) -> None:
        """The `alert` measurement, for Grafana's annotations and history."""
        for t in transitions:
            a = t.alert
            self._unwritten.append(
                encode_line(
                    "alert",
                    {"station": a.station, "device": a.device or "-", "rule": a.rule.value},
                    {
                        "state": t.state.value,
                        "active": int(t.state is AlertState.FIRING),
                        "severity": a.severity,
                        "message": self.renderer.alert_line(a),
                    },
                    t.at_ms,
                )
            )
        if not self._unwritten or self.store is None:
            self._unwritten.clear()
            return
        if time.monotonic() < self._history_next_try:
            del self._unwritten[:-MAX_UNWRITTEN]
            return
        try:
            self.store.write_lines(self._unwritten)
        except StoreError as exc:
            del self._unwritten[:-MAX_UNWRITTEN]
            self._history_next_try = time.monotonic() + self._history_backoff.next_delay()
            self._repeats.warning(
                "history", "alert history not written yet (%s); will retry with backoff", exc
            )
        else:
            self._unwritten.clear()
            self._history_backoff.reset()
            if self._repeats.clear("history") is not None:
                log.warning("alert history written again")


def _who(cond: Condition) -> str:
    """What a condition's grace is looked up by: its device, or its station."""
    return cond.device or f"station:{cond.station}"


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)
