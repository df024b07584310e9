"""Dashboards to JSON: `python -m dashboards.generate` rewrites `dashboards/json/`.

The JSON is committed, so Grafana provisioning can load it from disk and a
review shows what changed; a test fails when it differs from what the code
generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.boards import DASHBOARDS, BoardOptions

__all__ = ["JSON_DIR", "generate", "render"]

JSON_DIR = Path(__file__).parent / "json"


def render(name: str, opts: BoardOptions | None = None) -> str:
    """One dashboard's JSON, stable: sorted keys, two-space indent, a final newline.

    The committed JSON is made with the default options (Asia/Shanghai, Gaode's tiles).
    """
    board = DASHBOARDS[name](opts or BoardOptions()).build()
    return json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate(out_dir: Path = JSON_DIR, opts: BoardOptions | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DASHBOARDS:
        path = out_dir / f"{name}.json"
        path.write_text(render(name, opts), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else JSON_DIR):
        print(path)
