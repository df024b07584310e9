"""Median / min / max per consumer for the JSON lines peer_bench.py wrote.

  python summarize.py results/drain.jsonl results/live.jsonl results/kill.jsonl
"""

import json
import statistics
import sys
from collections import defaultdict

FIGURES = {
    "drain": ["msg_per_s", "msg_per_s_from_first_point", "drain_s", "first_point_after_s",
              "peak_rss_mb", "consumer_cpu_s", "stored"],
    "live": ["publish_rate", "p50_ms", "p99_ms", "max_ms", "mean_ms", "stored", "peak_rss_mb"],
    "kill9": ["stored_when_killed", "stored_2s_after_kill", "stored_final", "lost"],
}  # fmt: skip


def name(r: dict) -> str:
    if r["consumer"] == "nodered":
        return f"node-red (batch {r.get('batch', 500)})" if r.get("batch", 500) != 500 else "node-red"
    extra = f" {r['ws_args']}" if r.get("ws_args") else ""
    return f"waystation mqtt {r['mqtt_version']}{extra}"


def main() -> None:
    for path in sys.argv[1:]:
        rows = [json.loads(line) for line in open(path) if line.strip()]
        failed = [r for r in rows if "failed" in r]
        rows = [r for r in rows if "failed" not in r]
        if not rows:
            continue
        test = rows[0]["test"]
        groups = defaultdict(list)
        for r in rows:
            groups[name(r)].append(r)
        print(f"== {path} ({test}); failed runs: {len(failed)}")
        for g, rs in sorted(groups.items()):
            parts = [f"n={len(rs)}"]
            for f in FIGURES[test]:
                vals = [r[f] for r in rs if isinstance(r.get(f), (int, float))]
                if vals:
                    parts.append(
                        f"{f}: med {statistics.median(vals):,.6g} [{min(vals):,.6g}..{max(vals):,.6g}]"
                    )
            print(f"  {g:28s} " + "; ".join(parts))
            if test == "drain":
                print("      runs msg/s:", [r["msg_per_s"] for r in rs],
                      " µs CPU a message:", [round(r["consumer_cpu_s"] * 1e6 / max(r["stored"], 1), 1)
                                             for r in rs],
                      " load1:", [r.get("load1_before") for r in rs])  # fmt: skip
            if test == "live" and rs[0]["consumer"] == "waystation":
                print("      worker histogram p50/p99:",
                      [(r.get("ws_histogram_p50"), r.get("ws_histogram_p99")) for r in rs])  # fmt: skip
            if test == "kill9":
                print("      runs lost:", [r["lost"] for r in rs])


if __name__ == "__main__":
    main()
