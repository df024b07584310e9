"""`waystation dashboards push` against a peer speaking Grafana's HTTP API.

No Grafana runs here; the peer implements the four calls the push makes
(list and create folders, create or update a dashboard) with Grafana's
answers, including 412 for an existing dashboard without `overwrite`, and
records what it was sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.cli import main
from dashboards.boards import DASHBOARDS


class GrafanaPeer:
    def __init__(self) -> None:
        self.folders: list[dict[str, str]] = []
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.auth: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                peer.auth.append(self.headers.get("Authorization", ""))
                if self.path.startswith("/api/folders"):
                    self._answer(200, peer.folders)
                else:
                    self._answer(404, {"message": "not found"})

            def do_POST(self) -> None:
                peer.auth.append(self.headers.get("Authorization", ""))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/api/folders":
                    folder = {"uid": f"f{len(peer.folders)}", "title": body["title"]}
                    peer.folders.append(folder)
                    self._answer(200, folder)
                elif self.path == "/api/dashboards/db":
                    uid = body["dashboard"]["uid"]
                    if uid in peer.dashboards and not body["overwrite"]:
                        self._answer(412, {"message": "A dashboard with the same uid already exists",
                                           "status": "name-exists"})  # fmt: skip
                        return
                    peer.dashboards[uid] = body
                    self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}"})
                else:
                    self._answer(404, {"message": "not found"})

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def grafana() -> Iterator[GrafanaPeer]:
    peer = GrafanaPeer()
    yield peer
    peer.server.shutdown()
    peer.server.server_close()


def test_push_creates_the_folder_and_every_dashboard(
    grafana: GrafanaPeer, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["dashboards", "push", "--grafana", grafana.url, "--grafana-token", "glsa_test",
            "--folder", "工会驿站", "--datasource", "influx-prod"]  # fmt: skip
    assert main(args) == 0
    assert grafana.folders == [{"uid": "f0", "title": "工会驿站"}]
    assert set(grafana.dashboards) == {f"waystation-{n}" for n in DASHBOARDS}
    for body in grafana.dashboards.values():
        assert body["folderUid"] == "f0"
        [ds] = [v for v in body["dashboard"]["templating"]["list"] if v["name"] == "datasource"]
        assert ds["current"] == {"text": "influx-prod", "value": "influx-prod"}
    assert set(grafana.auth) == {"Bearer glsa_test"}
    assert capsys.readouterr().out.split() == [f"/d/waystation-{n}" for n in DASHBOARDS]

    # Again: the folder is found, not created twice; without --overwrite Grafana refuses.
    assert main(args) == 1
    assert "exists: add --overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--dashboard", "alerts"]) == 0
    assert len(grafana.folders) == 1


def test_unknown_dashboard_is_refused(
    grafana: GrafanaPeer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboards", "push", "--grafana", grafana.url, "--dashboard", "nope"]) == 2
    assert "no dashboard nope" in capsys.readouterr().err
    assert grafana.dashboards == {}
