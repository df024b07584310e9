"""`waystation dashboards push`: the dashboards to an existing Grafana, with grafana-client."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaException

from dashboards.boards import DASHBOARDS, BoardOptions
from dashboards.generate import render

__all__ = ["PushError", "push"]


class PushError(Exception):
    """Grafana refused or could not be reached; the message says what to do."""


def _where(url: str) -> str:
    """The URL without credentials, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"


def _folder_uid(api: GrafanaApi, title: str) -> str:
    for folder in api.folder.get_all_folders():
        if folder.get("title") == title:
            return str(folder["uid"])
    created = api.folder.create_folder(title)
    return str(created["uid"])


def _with_datasource(board: dict[str, Any], uid: str) -> dict[str, Any]:
    """Make `uid` the default of the dashboard's `datasource` variable."""
    for variable in board["templating"]["list"]:
        if variable["name"] == "datasource":
            variable["current"] = {"text": uid, "value": uid}
    return board


def push(
    url: str,
    credential: str | tuple[str, str] | None,
    *,
    folder: str = "Waystation",
    datasource_uid: str | None = None,
    overwrite: bool = False,
    names: Iterable[str] | None = None,
    opts: BoardOptions | None = None,
) -> list[str]:
    """Create or update each dashboard in `folder`; the URLs Grafana gives them."""
    api = GrafanaApi.from_url(url, credential=credential)
    pushed = []
    try:
        folder_uid = _folder_uid(api, folder)
        for name in names or DASHBOARDS:
            board = json.loads(render(name, opts))
            if datasource_uid:
                board = _with_datasource(board, datasource_uid)
            answer = api.dashboard.update_dashboard({
                "dashboard": board,
                "folderUid": folder_uid,
                "overwrite": overwrite,
                "message": "waystation dashboards push",
            })  # fmt: skip
            pushed.append(str(answer.get("url", board["uid"])))
    except GrafanaException as exc:
        hint = " (it exists: add --overwrite)" if exc.status_code == 412 else ""
        raise PushError(f"Grafana at {_where(url)}: {exc.message}{hint}") from exc
    except OSError as exc:
        raise PushError(f"cannot reach Grafana at {_where(url)}: {exc}") from exc
    return pushed
