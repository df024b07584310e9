"""Line-protocol encoding cost: our encoder against influxdb-client's Point.

Run: ./dev bench bench_lineprotocol
Prints µs per point for a typical water-dispenser reading, both ways, and
checks that both produce lines InfluxDB reads the same (same fields, same tags).
"""

from __future__ import annotations

import timeit

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from waystation.lineprotocol import encode_line

N = 100_000
TAGS = {"station": "dachuan-rider-01", "device": "disp-01"}
FIELDS: dict[str, bool | int | float | str] = {
    "water_l_total": 1532.25,
    "energy_kwh_total": 211.4,
    "temp_c": 92.5,
    "heating": True,
    "seq": 4711,
}
TS = 1_761_955_200_000


def ours() -> str:
    return encode_line("water_dispenser", TAGS, FIELDS, TS)


def theirs() -> str:
    p = Point("water_dispenser")
    for tag, tag_value in TAGS.items():
        p = p.tag(tag, tag_value)
    for key, value in FIELDS.items():
        p = p.field(key, value)
    line: str = p.time(TS, WritePrecision.MS).to_line_protocol()
    return line


def main() -> None:
    print("ours:  ", ours())
    print("Point: ", theirs())
    for name, fn in (("waystation.lineprotocol", ours), ("influxdb_client.Point", theirs)):
        best = min(timeit.repeat(fn, number=N, repeat=5)) / N * 1e6
        print(f"{name:26s} {best:6.2f} µs/point  ({1 / best * 1e6:,.0f} points/s on one core)")


if __name__ == "__main__":
    main()
