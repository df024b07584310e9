#!/usr/bin/env bash
# Alternating side-by-side runs; every result is one JSON line appended to $OUT_DIR/<test>.jsonl.
# Waystation's copy of ../shared/bench/peer-nodered (issue 17): four consumers a round, W5
# (`waystation ingest` as shipped: the socket engine), Wpaho (`--mqtt-engine paho`, the client
# before issue 17), W2 (`--workers 2`) and NR (Node-RED); CPU and RSS over the process tree.
# Run from the folder that holds ws/ (Waystation checkout with .venv) and nr/ (npm prefix with
# node-red and node-red-contrib-influxdb), or set WS_DIR, NR_DIR, NODE_BIN (Node.js >= 22.9).
#   peer-nodered/run_side_by_side.sh [drain|live|kill|all] [ROUNDS]
set -u
here="$(cd "$(dirname "$0")" && pwd)"
test="${1:-all}"
rounds="${2:-3}"
export WS_DIR="${WS_DIR:-ws}" NR_DIR="${NR_DIR:-nr}"
OUT_DIR="${OUT_DIR:-results}"
mkdir -p "$OUT_DIR"
export PB_SCRATCH="${PB_SCRATCH:-$OUT_DIR/scratch}"
mkdir -p "$PB_SCRATCH"
py="$WS_DIR/.venv/bin/python"

one() {  # test consumer [args...]
    local t="$1"; shift
    timeout 600 "$py" "$here/peer_bench.py" "$t" "$@" --out "$OUT_DIR/$t.jsonl" \
        || echo "{\"test\": \"$t\", \"failed\": \"$*\"}" >> "$OUT_DIR/$t.jsonl"
    sleep 3
}

round() {  # test round-number: rotate the order so no consumer always goes first
    local t="$1" r="$2"
    local -a order
    case $(( r % 4 )) in
        0) order=(W5 NR Wpaho W2);;
        1) order=(NR Wpaho W2 W5);;
        2) order=(Wpaho W2 W5 NR);;
        3) order=(W2 W5 NR Wpaho);;
    esac
    for c in "${order[@]}"; do
        case "$c" in
            W5) one "$t" --consumer waystation;;
            Wpaho) one "$t" --consumer waystation --ws-args "--mqtt-engine paho";;
            W2) one "$t" --consumer waystation --ws-args "--workers 2";;
            W311) one "$t" --consumer waystation --mqtt-version 3.1.1;;
            NR) one "$t" --consumer nodered;;
        esac
    done
}

for t in drain live kill; do
    if [ "$test" = all ] || [ "$test" = "$t" ]; then
        for r in $(seq 0 $(( rounds - 1 ))); do round "$t" "$r"; done
    fi
done
