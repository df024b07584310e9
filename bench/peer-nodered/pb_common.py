"""Shared pieces of the Waystation vs Node-RED side-by-side (peer-nodered).

Everything runs on 127.0.0.1 on free ports in a scratch directory: one
Mosquitto with Waystation's shipped queue/persistence limits, one InfluxDB 1.x,
one consumer (Waystation `ingest` or Node-RED) and paho publishers.

Paths come from the environment (no machine paths in here):
  WS_DIR     a Waystation checkout with its .venv (default: ./ws)
  NR_DIR     the npm prefix holding node-red and node-red-contrib-influxdb (default: ./nr)
  NODE_BIN   a Node.js >= 22.9 binary for Node-RED 5 (default: `node` on PATH)
  MOSQUITTO  / INFLUXD  server binaries (default: found on PATH)
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
STATIONS = 100
DEVICES_PER_STATION = 10
PUBLISH_WINDOW = 20_000


def env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name, default)).resolve()


def ws_dir() -> Path:
    return env_path("WS_DIR", "ws")


def nr_dir() -> Path:
    return env_path("NR_DIR", "nr")


def node_bin() -> str:
    return os.environ.get("NODE_BIN") or shutil.which("node") or "node"


def binary(name: str) -> str:
    env = os.environ.get(name.upper())
    if env:
        return env
    found = shutil.which(name)
    if found:
        return found
    raise SystemExit(f"{name} not found on PATH: add its directory (e.g. sbin) or set {name.upper()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


# --- devices, registry, payloads ------------------------------------------------------


def station_device(n: int) -> tuple[str, str]:
    n %= STATIONS * DEVICES_PER_STATION
    station = f"m{n // DEVICES_PER_STATION:03d}"
    return station, f"{station}-e{n % DEVICES_PER_STATION}"


def write_registry(path: Path) -> None:
    """100 stations x 10 electricity meters (one main, nine sub), as YAML (JSON is YAML)."""
    stations = {}
    for s in range(STATIONS):
        sid = f"m{s:03d}"
        stations[sid] = {
            "name": f"peer bench {s}",
            "model": "enterprise_incubated",
            "devices": {
                f"{sid}-e{d}": {
                    "kind": "meter",
                    "utility": "electricity",
                    "role": "main" if d == 0 else "sub",
                }
                for d in range(DEVICES_PER_STATION)
            },
        }
    path.write_text(json.dumps({"version": 1, "stations": stations}, indent=1))


def reading(seq: int, ts: int) -> bytes:
    """One meter reading as in README 'Wire contract' (about 120 bytes)."""
    return json.dumps(
        {
            "v": 1,
            "kind": "meter",
            "ts": ts,
            "seq": seq,
            "data": {"energy_kwh_total": 10000.0 + seq * 0.01, "power_w": float(1000 + seq % 997)},
        },
        separators=(",", ":"),
    ).encode()


def topic(station: str, device: str) -> str:
    return f"stations/{station}/{device}/telemetry"


# --- servers ---------------------------------------------------------------------------


class Proc:
    """A child process we started; stopped only by its own pid."""

    def __init__(self, args: list[str], log: Path, cwd: Path | None = None, env: dict | None = None):
        self.args = args
        self.log = log
        self.cwd = cwd
        self.env = env
        self.p: subprocess.Popen | None = None

    def start(self) -> None:
        fh = self.log.open("ab")
        self.p = subprocess.Popen(
            self.args, stdout=fh, stderr=subprocess.STDOUT, cwd=self.cwd, env=self.env
        )
        fh.close()

    @property
    def pid(self) -> int:
        assert self.p is not None
        return self.p.pid

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def stop(self, timeout: float = 30) -> None:
        if self.p is None or self.p.poll() is not None:
            return
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()

    def kill9(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def mosquitto_conf(port: int, workdir: Path) -> str:
    # Waystation's shipped limits (app/data/ since issue 16), used for both consumers.
    path = ws_dir() / "app/data/mosquitto-limits.conf"
    if not path.exists():
        path = ws_dir() / "waystation/data/mosquitto-limits.conf"
    limits = path.read_text()
    return (
        f"user {getpass.getuser()}\n"
        f"listener {port} {HOST}\nallow_anonymous true\n"
        f"persistence_location {workdir}/\nlog_dest stdout\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
        f"{limits}\n"
    )


def influx_conf(port: int, rpc_port: int, d: Path) -> str:
    # Same as waystation.localservers.InfluxServer writes.
    return (
        "reporting-enabled = false\n"
        f'bind-address = "{HOST}:{rpc_port}"\n'
        f'[meta]\n  dir = "{d}/meta"\n  logging-enabled = false\n'
        f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n'
        "  query-log-enabled = false\n  trace-logging-enabled = false\n"
        "  max-series-per-database = 1000000\n"
        "[monitor]\n  store-enabled = false\n"
        "[subscriber]\n  enabled = false\n"
        "[continuous_queries]\n  enabled = false\n  log-enabled = false\n"
        f'[http]\n  bind-address = "{HOST}:{port}"\n  log-enabled = false\n'
        "  max-body-size = 25000000\n"
        '[logging]\n  level = "warn"\n  suppress-logo = true\n'
    )


class Servers:
    """Fresh Mosquitto + InfluxDB in a scratch dir; `with Servers() as s:`."""

    def __init__(self, keep: bool = False) -> None:
        base = os.environ.get("PB_SCRATCH") or None
        self.root = Path(tempfile.mkdtemp(prefix="peerbench-", dir=base))
        self.keep = keep
        self.mqtt_port = free_port()
        self.influx_port = free_port()
        self.rpc_port = free_port()
        self.db = "bench"
        (self.root / "mosquitto").mkdir()
        (self.root / "influxdb").mkdir()

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{HOST}:{self.mqtt_port}"

    @property
    def influx_url(self) -> str:
        return f"http://{HOST}:{self.influx_port}"

    def __enter__(self) -> Servers:
        mconf = self.root / "mosquitto" / "mosquitto.conf"
        mconf.write_text(mosquitto_conf(self.mqtt_port, self.root / "mosquitto"))
        self.mosq = Proc([binary("mosquitto"), "-c", str(mconf)], self.root / "mosquitto.log")
        iconf = self.root / "influxdb" / "influxdb.conf"
        iconf.write_text(influx_conf(self.influx_port, self.rpc_port, self.root / "influxdb"))
        self.influx = Proc([binary("influxd"), "-config", str(iconf)], self.root / "influxd.log")
        self.mosq.start()
        self.influx.start()
        deadline = time.monotonic() + 30
        while not (port_open(self.mqtt_port) and self._ping()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"servers not up; see {self.root}")
            time.sleep(0.05)
        self.query(f'CREATE DATABASE "{self.db}"', post=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.mosq.stop()
        self.influx.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.influx_url}/ping", timeout=1) as r:
                return r.status == 204
        except OSError:
            return False

    def query(self, q: str, post: bool = False) -> dict:
        data = urllib.parse.urlencode({"q": q, "db": self.db}).encode()
        if post:
            req = urllib.request.Request(f"{self.influx_url}/query", data=data)
        else:
            req = urllib.request.Request(f"{self.influx_url}/query?{data.decode()}")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def count(self, where: str = "") -> int:
        res = self.query(f"SELECT count(seq) FROM meter {where}")
        try:
            return int(res["results"][0]["series"][0]["values"][0][1])
        except (KeyError, IndexError):
            return 0


# --- consumers -------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])  # kB
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def descendants(pid: int) -> list[int]:
    """pid and every process below it (a supervisor's workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of the process tree (live processes, plus children already reaped)."""
    total = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    for p in descendants(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])) / tck
    return total


class Consumer:
    kind = "?"
    client_id = "?"

    def __init__(self, servers: Servers, label: str) -> None:
        self.s = servers
        self.label = label
        self.proc: Proc | None = None
        self.starts = 0

    def command(self) -> tuple[list[str], dict, Path | None]:
        raise NotImplementedError

    def start(self) -> None:
        args, env, cwd = self.command()
        self.starts += 1
        self.proc = Proc(args, self.s.root / f"{self.label}.log", cwd=cwd, env=env)
        self.proc.start()

    def wait_ready(self, timeout: float = 60) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.stop()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill9()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class Waystation(Consumer):
    kind = "waystation"
    client_id = "waystation-ingest-1"  # the default

    def __init__(
        self, servers: Servers, label: str, mqtt_version: str = "5", extra: list[str] | None = None
    ) -> None:
        super().__init__(servers, label)
        self.mqtt_version = mqtt_version
        self.extra = extra or []
        self.health_port = free_port()
        self.registry = servers.root / "stations.yaml"
        write_registry(self.registry)

    def command(self) -> tuple[list[str], dict, Path | None]:
        exe = ws_dir() / ".venv" / "bin" / "waystation"
        args = [str(exe), "ingest", "--mqtt", self.s.mqtt_url, "--influx", self.s.influx_url,
                "--database", self.s.db, "--registry", str(self.registry),
                "--health-port", str(self.health_port)]  # fmt: skip
        if self.mqtt_version != "5":
            args += ["--mqtt-version", self.mqtt_version]
        args += self.extra
        return args, dict(os.environ), None

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://{HOST}:{self.health_port}{path}", timeout=2
            ) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""
        except OSError:
            return 0, ""

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self._get("/readyz")[0] != 200:
            if time.monotonic() > deadline or not (self.proc and self.proc.alive()):
                raise RuntimeError(f"waystation not ready; see {self.proc.log if self.proc else ''}")
            time.sleep(0.05)

    def metrics(self) -> dict[str, float]:
        code, text = self._get("/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out


class NodeRed(Consumer):
    kind = "nodered"
    client_id = "nr-ingest"

    def __init__(self, servers: Servers, label: str, batch: int = 500) -> None:
        super().__init__(servers, label)
        self.user_dir = servers.root / "nr-user"
        self.user_dir.mkdir(exist_ok=True)
        self.batch = batch
        self._log_offset = 0

    def command(self) -> tuple[list[str], dict, Path | None]:
        red = nr_dir() / "node_modules" / "node-red" / "red.js"
        env = dict(os.environ)
        env.update(
            PB_MQTT_PORT=str(self.s.mqtt_port),
            PB_INFLUX_PORT=str(self.s.influx_port),
            PB_DB=self.s.db,
            PB_CLIENT_ID=self.client_id,
            PB_BATCH=str(self.batch),
        )
        args = [node_bin(), str(red), "--userDir", str(self.user_dir),
                "--settings", str(HERE / "settings.js"), str(HERE / "flows.json")]  # fmt: skip
        return args, env, None

    def start(self) -> None:
        log = self.s.root / f"{self.label}.log"
        self._log_offset = log.stat().st_size if log.exists() else 0
        super().start()

    def wait_ready(self, timeout: float = 60) -> None:
        """Ready when the broker node logged its connection (it subscribes in the same tick)."""
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while True:
            text = self.proc.log.read_bytes()[self._log_offset :].decode(errors="replace")
            if "Connected to broker" in text:
                break
            if time.monotonic() > deadline or not self.proc.alive():
                raise RuntimeError(f"node-red not ready; see {self.proc.log}:\n{text[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.5)  # SUBSCRIBE/SUBACK follow the CONNACK


def make_consumer(kind: str, servers: Servers, label: str, **kw) -> Consumer:
    if kind == "waystation":
        return Waystation(servers, label, kw.get("mqtt_version", "5"), kw.get("ws_args"))
    if kind == "nodered":
        return NodeRed(servers, label, kw.get("batch", 500))
    raise ValueError(kind)


# --- publishers (paho, from the Waystation venv) -------------------------------------------


def _paho_client(client_id: str):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv311
    )
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    return c


def publish_range(port: int, client_id: str, start: int, stop: int, base_ts: int) -> None:
    """Messages start..stop, QoS 1, as fast as the broker acks (at most WINDOW unacked)."""
    c = _paho_client(client_id)
    c.connect(HOST, port)
    c.loop_start()
    sent: deque = deque()
    for m in range(start, stop):
        st, dev = station_device(m)
        sent.append(c.publish(topic(st, dev), reading(m, base_ts + m), qos=1))
        if len(sent) > PUBLISH_WINDOW:
            sent.popleft().wait_for_publish(120)
    for info in sent:
        info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def publish_parallel(port: int, n: int, base_ts: int, tag: str, publishers: int = 2) -> float:
    import multiprocessing as mp

    chunk = -(-n // publishers)
    procs = [
        mp.Process(
            target=publish_range,
            args=(port, f"pb-pub-{tag}-{p}", p * chunk, min((p + 1) * chunk, n), base_ts),
        )
        for p in range(publishers)
    ]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.monotonic() - t0
