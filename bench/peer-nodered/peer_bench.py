"""Waystation ingest vs Node-RED (mqtt in -> function -> join -> influxdb batch), side by side.

Run with the Python of a Waystation venv (it has paho-mqtt), from the folder that
holds `ws/` (the Waystation checkout) and `nr/` (the npm prefix), or set WS_DIR,
NR_DIR, NODE_BIN (see pb_common.py). Each run starts its own Mosquitto (Waystation's
shipped limits: persistence, max_queued_messages 200000, max_inflight 1000) and
InfluxDB 1.x on free loopback ports, and prints one JSON line.

  drain --consumer waystation|nodered [--mqtt-version 5|3.1.1] [--messages 150000]
      N single-reading QoS 1 messages are queued for the consumer's persistent
      session while it is down; the consumer starts and the clock runs from its
      spawn until InfluxDB returns count(seq) == N. Also: rate from the first
      stored point, consumer peak RSS (VmHWM) and CPU seconds.
  live  --consumer ... [--rate 5000] [--seconds 20]
      consumer running; one paho publisher at a fixed rate, ts = publish time.
      Every 10th message goes to one probe series, whose count is polled every
      50 ms: the k-th probe is queryable at the first poll that counts >= k, so
      latency = that poll's time - the probe's ts (an upper bound, 50 ms grain).
  kill  --consumer ... [--messages 30000]
      N queued; consumer starts; SIGKILL when InfluxDB holds about N/2; restart
      (same client id, same session); wait until the count stops moving; lost =
      N - count (points are distinct: a re-delivery overwrites its own point).
"""

from __future__ import annotations

import argparse
import shlex
import json
import multiprocessing as mp
import os
import statistics
import threading
import time

import pb_common as pb


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_rss_kb = 0
        self.hwm_kb = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        # The largest process of the tree (a supervisor's worker): RSS is per worker.
        for pid in pb.descendants(self.pid):
            st = pb.proc_status(pid)
            self.peak_rss_kb = max(self.peak_rss_kb, st.get("VmRSS", 0))
            self.hwm_kb = max(self.hwm_kb, st.get("VmHWM", 0))

    def stop(self) -> None:
        self.sample()
        self._halt.set()


def create_session(c: pb.Consumer) -> None:
    """First start: the persistent session and its subscription; then an orderly stop."""
    c.start()
    c.wait_ready()
    time.sleep(0.5)
    c.stop()


def cmd_drain(a: argparse.Namespace) -> dict:
    n = a.messages
    with pb.Servers(keep=a.keep) as s:
        c = pb.make_consumer(a.consumer, s, "consumer", mqtt_version=a.mqtt_version, batch=a.batch,
                             ws_args=shlex.split(a.ws_args))
        create_session(c)
        base_ts = int(time.time() * 1000) - 3_600_000
        pub_s = pb.publish_parallel(s.mqtt_port, n, base_ts, "q")
        time.sleep(1.0)  # let the broker settle
        load0 = loadavg()
        t0 = time.monotonic()
        c.start()
        rss = RssSampler(c.pid)
        rss.start()
        t_first = None
        count = 0
        last_change = t0
        while True:
            now = time.monotonic()
            got = s.count()
            if got != count:
                last_change = now
            count = got
            if count and t_first is None:
                t_first, c_first = now, count
            if count >= n:
                break
            if now - last_change > a.stall_s or now - t0 > a.timeout_s:
                break
            # fine polling at the start and the end, coarse in between (the query costs CPU)
            time.sleep(0.1 if (t_first is None or count > 0.9 * n) else 0.5)
        t_done = time.monotonic()
        rss.stop()
        cpu = pb.tree_cpu_seconds(c.pid)
        broker_cpu = pb.cpu_seconds(s.mosq.pid)
        influx_cpu = pb.cpu_seconds(s.influx.pid)
        extra = {}
        if isinstance(c, pb.Waystation):
            m = c.metrics()
            extra["ws_points_written"] = m.get("waystation_ingest_points_written_total")
            extra["ws_deadletters"] = sum(
                v for k, v in m.items() if k.startswith("waystation_ingest_deadletters_total")
            )
        c.stop()
        sample = s.query("SELECT * FROM meter ORDER BY time DESC LIMIT 1")["results"][0]
        fields = s.query("SHOW FIELD KEYS FROM meter")["results"][0]
        extra["sample_point"] = dict(zip(sample["series"][0]["columns"], sample["series"][0]["values"][0])) if "series" in sample else None
        extra["field_types"] = dict(fields["series"][0]["values"]) if "series" in fields else None
        res = {
            "test": "drain", "consumer": a.consumer, "ws_args": a.ws_args, "mqtt_version": a.mqtt_version
            if a.consumer == "waystation" else "3.1.1", "batch": a.batch if a.consumer == "nodered"
            else 500, "messages": n, "stored": count, "complete": count >= n,
            "queue_s": round(pub_s, 2), "drain_s": round(t_done - t0, 2),
            "msg_per_s": round(count / (t_done - t0)),
            "first_point_after_s": round(t_first - t0, 2) if t_first else None,
            "msg_per_s_from_first_point": round((count - c_first) / (t_done - t_first))
            if t_first and t_done > t_first else None,
            "peak_rss_mb": round(max(rss.hwm_kb, rss.peak_rss_kb) / 1024, 1),
            "consumer_cpu_s": round(cpu, 2), "broker_cpu_s": round(broker_cpu, 2),
            "influx_cpu_s": round(influx_cpu, 2), "load1_before": load0, "load1_after": loadavg(),
            **extra,
        }  # fmt: skip
    return res


def _publish_rate(port: int, total: int, rate: float, q: mp.Queue) -> None:
    """One paho publisher at a fixed rate; every 10th message goes to the probe series."""
    c = pb._paho_client("pb-live")
    c.max_queued_messages_set(0)
    c.connect(pb.HOST, port)
    c.loop_start()
    probes: list[float] = []
    infos = []
    last_ts = [0] * 1000
    t0 = time.monotonic()
    seq0 = 50_000_000
    for m in range(total):
        delay = t0 + m / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        dev = 0 if m % 10 == 0 else 1 + m % 999
        # a point is series + time: two readings of one device in the same ms would be one
        # point, so each device's ts is kept strictly increasing (bumped a ms when needed)
        now = time.time()
        ts = max(int(now * 1000), last_ts[dev] + 1)
        last_ts[dev] = ts
        station, device = pb.station_device(dev)
        if dev == 0:
            probes.append(now)  # the real publish time, not the (possibly bumped) ts
        infos.append(c.publish(pb.topic(station, device), pb.reading(seq0 + m, ts), qos=1))
    sent_s = time.monotonic() - t0
    # every message acknowledged by the broker before disconnecting (else paho drops its queue)
    unacked = 0
    for info in infos:
        try:
            info.wait_for_publish(max(0.1, t0 + sent_s + 60 - time.monotonic()))
        except (RuntimeError, ValueError):
            pass
        unacked += not info.is_published()
    c.disconnect()
    c.loop_stop()
    q.put((probes, sent_s, unacked))


def _quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def cmd_live(a: argparse.Namespace) -> dict:
    total = int(a.rate * a.seconds)
    probe_dev = pb.station_device(0)[1]
    with pb.Servers(keep=a.keep) as s:
        c = pb.make_consumer(a.consumer, s, "consumer", mqtt_version=a.mqtt_version, batch=a.batch,
                             ws_args=shlex.split(a.ws_args))
        c.start()
        c.wait_ready()
        time.sleep(1.0)
        rss = RssSampler(c.pid)
        rss.start()
        polls: list[tuple[float, int]] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                got = s.count(f"WHERE device = '{probe_dev}'")
                polls.append((time.time(), got))
                stop.wait(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        q: mp.Queue = mp.Queue()
        pub = mp.Process(target=_publish_rate, args=(s.mqtt_port, total, a.rate, q))
        poller.start()
        pub.start()
        probes, sent_s, unacked = q.get()
        pub.join()
        deadline = time.monotonic() + 60
        while s.count() < total and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.2)
        stop.set()
        poller.join()
        rss.stop()
        stored = s.count()
        extra = {}
        if isinstance(c, pb.Waystation):
            m = c.metrics()
            name = "waystation_ingest_reading_age_seconds"
            buckets = sorted(
                (float(k.split('le="')[1].rstrip('"}')), v)
                for k, v in m.items()
                if k.startswith(f"{name}_bucket") and "+Inf" not in k
            )
            cnt = m.get(f"{name}_count", 0)

            def hq(qq: float) -> str:
                for bound, cum in buckets:
                    if cum >= qq * cnt:
                        return f"<= {bound * 1000:g} ms"
                return "> last bucket"

            extra = {"ws_histogram_p50": hq(0.5), "ws_histogram_p99": hq(0.99)}
        c.stop()
    lat = []
    i = 0
    for k, ts in enumerate(probes, start=1):
        while i < len(polls) and polls[i][1] < k:
            i += 1
        if i == len(polls):
            break
        lat.append(polls[i][0] - ts)
    res = {
        "test": "live", "consumer": a.consumer, "ws_args": a.ws_args, "mqtt_version": a.mqtt_version
        if a.consumer == "waystation" else "3.1.1", "published": total,
        "publish_rate": round(total / sent_s), "pub_unacked": unacked, "stored": stored, "probes": len(probes),
        "probes_seen": len(lat),
        "p50_ms": round(1000 * _quantile(lat, 0.5)) if lat else None,
        "p99_ms": round(1000 * _quantile(lat, 0.99)) if lat else None,
        "max_ms": round(1000 * max(lat)) if lat else None,
        "mean_ms": round(1000 * statistics.fmean(lat)) if lat else None,
        "peak_rss_mb": round(max(rss.hwm_kb, rss.peak_rss_kb) / 1024, 1),
        "load1": loadavg(), **extra,
    }  # fmt: skip
    return res


def cmd_kill(a: argparse.Namespace) -> dict:
    n = a.messages
    with pb.Servers(keep=a.keep) as s:
        c = pb.make_consumer(a.consumer, s, "consumer", mqtt_version=a.mqtt_version, batch=a.batch,
                             ws_args=shlex.split(a.ws_args))
        create_session(c)
        base_ts = int(time.time() * 1000) - 3_600_000
        pb.publish_parallel(s.mqtt_port, n, base_ts, "k")
        time.sleep(1.0)
        c.start()
        t0 = time.monotonic()
        count = 0
        while count < n // 2 and time.monotonic() - t0 < a.timeout_s:
            count = s.count()
            time.sleep(0.02)
        c.kill9()
        at_kill = count
        time.sleep(2.0)
        after_kill = s.count()
        c.start()
        t1 = time.monotonic()
        last, last_change = -1, t1
        while time.monotonic() - last_change < a.settle_s and time.monotonic() - t1 < a.timeout_s:
            got = s.count()
            if got != last:
                last, last_change = got, time.monotonic()
            if got >= n:
                break
            time.sleep(0.25)
        final = s.count()
        c.stop()
        final_after_stop = s.count()
    return {
        "test": "kill9", "consumer": a.consumer, "ws_args": a.ws_args, "mqtt_version": a.mqtt_version
        if a.consumer == "waystation" else "3.1.1", "published": n,
        "stored_when_killed": at_kill, "stored_2s_after_kill": after_kill,
        "stored_final": max(final, final_after_stop), "lost": n - max(final, final_after_stop),
        "load1": loadavg(),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("test", choices=["drain", "live", "kill"])
    ap.add_argument("--consumer", choices=["waystation", "nodered"], required=True)
    ap.add_argument("--mqtt-version", choices=["5", "3.1.1"], default="5", help="Waystation's")
    ap.add_argument("--batch", type=int, default=500, help="Node-RED join size")
    ap.add_argument("--ws-args", default="", help="more flags for `waystation ingest`")
    ap.add_argument("--messages", type=int, default=None)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--timeout-s", type=float, default=300)
    ap.add_argument("--stall-s", type=float, default=30)
    ap.add_argument("--settle-s", type=float, default=15)
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    ap.add_argument("--out", help="append the JSON line here too")
    a = ap.parse_args()
    if a.messages is None:
        a.messages = 150_000 if a.test == "drain" else 30_000
    res = {"drain": cmd_drain, "live": cmd_live, "kill": cmd_kill}[a.test](a)
    res["at"] = time.strftime("%H:%M:%S")
    line = json.dumps(res)
    print(line, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
