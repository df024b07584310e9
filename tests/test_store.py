"""The InfluxDB store: failures sorted right, and real writes and queries."""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.localservers import InfluxServer, free_port
from waystation.store import (
    BatchTooLarge,
    FieldConflict,
    InfluxStore,
    PointsRejected,
    StoreFatal,
    StoreUnavailable,
    classify_write_failure,
)


def test_classification() -> None:
    e = classify_write_failure(429, b'{"error":"slow down"}', {"Retry-After": "7"})
    assert isinstance(e, StoreUnavailable)
    assert e.retry_after == 7.0
    assert "slow down" in str(e)
    e = classify_write_failure(503, b"", {"Retry-After": "99999"})
    assert isinstance(e, StoreUnavailable)
    assert e.retry_after == 300.0  # capped
    assert isinstance(classify_write_failure(500, b"", {}), StoreUnavailable)
    assert isinstance(classify_write_failure(413, b"too big", {}), BatchTooLarge)
    assert isinstance(classify_write_failure(400, b'{"error":"partial write"}', {}), PointsRejected)
    assert isinstance(classify_write_failure(422, b"", {}), PointsRejected)
    for status in (401, 403, 404, 418):
        assert isinstance(classify_write_failure(status, b"", {}), StoreFatal)


def test_url_must_be_http() -> None:
    with pytest.raises(StoreFatal, match="http://host"):
        InfluxStore("influx:8086", "db")


def test_token_is_not_shown() -> None:
    store = InfluxStore("http://127.0.0.1:1", "db", token="s3cret")  # noqa: S106 - a dummy
    assert "s3cret" not in repr(store)


@pytest.mark.integration
def test_write_and_query(store: InfluxStore) -> None:
    store.write_lines(
        [
            "door_counter,device=d1,station=s1 in_total=5i,out_total=3i,seq=1i 1761955200000",
            "door_counter,device=d1,station=s1 in_total=9i,out_total=8i,seq=2i 1761955260000",
        ]
    )
    [series] = store.query('SELECT "in_total", "seq" FROM "door_counter" GROUP BY "station"')
    assert series.tags == {"station": "s1"}
    assert series.values == [[1761955200000, 5, 1], [1761955260000, 9, 2]]
    assert series.records()[1] == {"time": 1761955260000, "in_total": 9, "seq": 2, "station": "s1"}


@pytest.mark.integration
def test_rewriting_the_same_point_is_idempotent(store: InfluxStore) -> None:
    line = "meter,device=m,station=s energy_kwh_total=10.5,seq=1i 1761955200000"
    store.write_lines([line])
    store.write_lines([line])
    [series] = store.query('SELECT count("seq") FROM "meter"')
    assert series.values[0][1] == 1


@pytest.mark.integration
def test_bad_line_and_field_type_conflict_are_rejected(store: InfluxStore) -> None:
    with pytest.raises(PointsRejected, match="unable to parse"):
        store.write_lines(["not line protocol"])
    store.write_lines(["m f=1.5 1761955200000"])
    with pytest.raises(PointsRejected, match="field type conflict") as refused:
        store.write_lines(['m f="text" 1761955260000', "m f=2.5 1761955320000"])
    # The answer names the field, so the refused line is found without bisecting.
    assert refused.value.conflicts == (FieldConflict("m", "f", "string", "float"),)
    assert [c.matches('m f="text" 1') for c in refused.value.conflicts] == [True]
    assert [c.matches("m f=2.5 1") for c in refused.value.conflicts] == [False]


@pytest.mark.integration
def test_missing_database_is_fatal(influxdb: InfluxServer) -> None:
    with pytest.raises(StoreFatal, match="database not found"):
        InfluxStore(influxdb.url, "no_such_db").write_lines(["m f=1.0 1761955200000"])


def test_nothing_listening_is_unavailable() -> None:
    s = InfluxStore(f"http://127.0.0.1:{free_port()}", "db", timeout_s=1)
    with pytest.raises(StoreUnavailable, match="unreachable") as info:
        s.write_lines(["m f=1.0 1761955200000"])
    # Said for a person: no `<urllib3.connection.HTTPConnection object at 0x…>`, and in zh.
    assert "object at 0x" not in str(info.value)
    assert "Connection refused" in str(info.value)
    assert "无法连接 InfluxDB" in str(info.value)
    assert s.ping() is False


class _SlowInflux(BaseHTTPRequestHandler):
    """Answers every query correctly, but only after a second, like a busy server."""

    def do_POST(self) -> None:
        time.sleep(1.0)  # the server's delay, not the test waiting
        body = b'{"results":[{"statement_id":0}]}'
        # A client that gave up waiting has gone: what the test expects.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_a_query_may_wait_longer_than_the_stores_default() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowInflux)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = InfluxStore(f"http://127.0.0.1:{server.server_address[1]}", "db", timeout_s=0.3)
        with pytest.raises(StoreUnavailable, match="unreachable"):
            store.query("SELECT 1")
        assert store.query("SELECT 1", timeout_s=30) == []  # the monthly report's long reads
        with pytest.raises(StoreUnavailable):
            store.query("SELECT 1")  # the default is unchanged
    finally:
        server.shutdown()
        server.server_close()
