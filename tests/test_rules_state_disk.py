"""The rules' state file: on a full disk no page lost, none sent twice, health says so;
old given-up or orphaned notices pruned so it does not grow for ever; and one
service to a file.

Once, a notice delivered while the disk was full was sent again every second
(the delete failed after the send, with a traceback each time), a station
that went down while the disk was full was never paged (the alert was marked
notified in memory, its notice discarded with the failed save), and
`/healthz` stayed green. Real parts: Mosquitto, a webhook, and a small tmpfs
under the state file that something else fills up.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest

from app.localservers import MosquittoServer
from rules.outage.alerts import Alert, AlertBook, Notice
from rules.outage.config import RulesConfig, Thresholds, Timing, WebhookChannel
from rules.outage.detect import Rule
from rules.outage.service import RulesService
from rules.outage.statedb import RulesState, StateInUse
from tests.helpers import MqttSpy, fill_disk, wait_for
from tests.rules_helpers import will_only_stations
from tests.rules_peers import HookServer
from waystation.settings import MqttSettings

pytestmark = pytest.mark.integration


def _fired(hooks: HookServer, station: str) -> int:
    return sum(1 for h in hooks.on("/hook") for n in h.body["notices"]
               if n["station"] == station and n["firing"])  # fmt: skip


def test_a_full_disk_under_the_state_loses_no_page_and_sends_none_twice(
    small_disk: Path,
    mosquitto: MosquittoServer,
    uid: str,
    hooks: HookServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    s1, s2, s3 = (f"s{uid}-{n}" for n in (1, 2, 3))
    registry = will_only_stations([s1, s2, s3])
    config = RulesConfig(
        thresholds=Thresholds(reconnect_grace=timedelta(seconds=1)),
        timing=Timing(scan_every=timedelta(seconds=0.5), group_interval=timedelta(seconds=2)),
        channels=[WebhookChannel(type="webhook", url=hooks.url("/hook"))],
    )
    service = RulesService(
        MqttSettings.from_url(mosquitto.url), registry, config, small_disk / "state.db",
        client_id=f"rules-{uid}",
    )  # fmt: skip
    [sender] = service.senders

    def offline(pub: MqttSpy, station: str) -> None:
        payload = json.dumps({"v": 1, "ts": int(time.time() * 1000), "state": "offline",
                              "agent": "test"})  # fmt: skip
        pub.publish(f"stations/{station}/{station}-gw/status", payload)

    with MqttSpy(MqttSettings.from_url(mosquitto.url), f"pub-{uid}", []) as pub, service:
        wait_for(lambda: service.giving_verdicts, "verdicts")
        hooks.fail_until["/hook"] = time.monotonic() + 3600
        offline(pub, s1)  # s1's notice is stored and waits for the webhook
        wait_for(lambda: sender.stats.retries >= 1, "the webhook failing")
        assert service.alive

        fill_disk(small_disk / "filler", leave=0)  # something else fills the disk
        hooks.fail_until["/hook"] = 0  # and the webhook recovers
        wait_for(lambda: _fired(hooks, s1) == 1, "s1's page")
        offline(pub, s2)  # s2 goes down while the disk is full
        wait_for(lambda: service.state_failing_since is not None, "the failed save")
        wait_for(lambda: not service.alive, "/healthz failing")
        passes = service.passes
        wait_for(lambda: service.passes >= passes + 6, "six passes on the full disk")
        assert _fired(hooks, s1) == 1, "a delivered page sent again"
        assert _fired(hooks, s2) == 0, "s2 cannot be sent before it is stored"

        (small_disk / "filler").unlink()  # room again
        wait_for(lambda: _fired(hooks, s2) == 1, "s2's page, kept in memory meanwhile")
        wait_for(lambda: service.alive, "/healthz green again")
        offline(pub, s3)
        wait_for(lambda: _fired(hooks, s3) == 1, "s3's page")
        passes = service.passes
        wait_for(lambda: service.passes >= passes + 4, "four passes more")
        assert (_fired(hooks, s1), _fired(hooks, s2), _fired(hooks, s3)) == (1, 1, 1)
        wait_for(lambda: service.state.notice_counts().get("webhook", (0, 0)) == (0, 0),
                 "nothing left waiting in the state file")  # fmt: skip

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    said = [r.getMessage() for r in errors if "rules state not written" in r.getMessage()]
    assert len(said) == 1, said  # said once, not at every pass
    kept = [r.getMessage() for r in errors if "kept in memory (not sent again)" in r.getMessage()]
    assert len(kept) == 1, kept
    assert not any(r.exc_info for r in errors), "no tracebacks"
    assert any("rules state written again" in r.getMessage() for r in caplog.records)


def test_old_notices_are_pruned_and_the_file_has_one_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A channel refused for good, or removed from the settings, leaves notices behind:
    kept a while for an operator to see, then dropped, so the file stops growing."""
    caplog.set_level(logging.INFO)
    station = "s-prune"
    registry = will_only_stations([station])
    config = RulesConfig(
        timing=Timing(notice_retry_for=timedelta(hours=24)),
        channels=[WebhookChannel(type="webhook", url="http://127.0.0.1:9/hook")],
    )
    state_path = tmp_path / "state.db"
    state = RulesState(state_path)
    now = int(time.time() * 1000)
    day = 24 * 3600 * 1000
    alert = Alert(f"agent_offline:{station}:{station}-gw", Rule.AGENT_OFFLINE, station,
                  f"{station}-gw", now - 9 * day)  # fmt: skip
    notice = Notice(station, (alert,), ())
    state.save(AlertBook(), [("webhook", notice)] * 3, now_ms=now - 9 * day)
    state.save(AlertBook(), [("webhook", notice)], now_ms=now - 3600_000)  # still retried
    state.save(AlertBook(), [("removed", notice)], now_ms=now - 2 * day)  # past its retry time
    state.save(AlertBook(), [("removed", notice)], now_ms=now - 3600_000)  # still within it
    [a, b, c, d, *_] = [p.id for p in state.pending("webhook")]
    state.give_up([a, b], "refused", now - 8 * day)  # a week ago and more: dropped
    state.give_up([c], "refused", now - 2 * day)  # kept for now
    state.close()
    settings = MqttSettings.from_url("mqtt://127.0.0.1:9")  # no broker: not needed here
    with RulesService(settings, registry, config, state_path) as service:  # prunes at start
        assert service.notices_pruned == 3
        assert service.state.notice_counts() == {"webhook": (1, 1), "removed": (1, 0)}
        assert [p.id for p in service.state.pending("webhook")] == [d]
        service.prune()  # as every hour
        assert service.notices_pruned == 3, "nothing more to prune"
        # A second service on the same file would send this one's notices: refused.
        with pytest.raises(StateInUse, match=r"另一个告警服务.*\n.*another rules service"):
            RulesService(settings, registry, config, state_path)
    with RulesService(settings, registry, config, state_path):  # free again once stopped
        pass
