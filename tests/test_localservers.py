"""The test servers themselves: a port taken between choosing it and binding it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.localservers import HOST, InfluxServer, LocalServerError, MosquittoServer

pytestmark = pytest.mark.integration


def _occupy(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, port))
    s.listen()
    return s


@pytest.mark.parametrize("server_type", [MosquittoServer, InfluxServer])
def test_a_port_taken_before_the_first_start_is_chosen_again(
    tmp_path: Path, server_type: type[MosquittoServer | InfluxServer]
) -> None:
    server = server_type(tmp_path)
    taken = server.port
    with _occupy(taken):
        server.start()
        try:
            assert server.running
            assert server.port != taken
        finally:
            server.stop()


def test_a_restart_keeps_its_port_and_says_when_it_is_taken(tmp_path: Path) -> None:
    server = MosquittoServer(tmp_path)
    server.start()
    port = server.port
    server.stop()
    with _occupy(port), pytest.raises(LocalServerError, match="exited at start"):
        server.start()  # clients know this port: another one would not do
    assert server.port == port
    server.start()
    try:
        assert server.port == port
    finally:
        server.stop()
