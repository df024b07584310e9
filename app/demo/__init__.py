"""`waystation demo`: the whole story of a simulated district through the real pipeline.

On one machine, with nothing set up beforehand: Mosquitto and InfluxDB on
free loopback ports in a scratch directory, ingest, the rules service and one
edge agent per station of the embedded Dachuan registry (rider homes run by
incubated enterprises, a department-guided one, a sanitation station run by
its industry union, a community-integrated one).

1. History: each agent simulates the past month (and this one so far) into
   its outbox and replays it through MQTT; a progress bar shows the rate.
2. The past month's allocation export (CSV + XLSX) and the summary by party.
3. Live, with faults: a station's power cut, a dispenser going cold; the
   alerts fire and resolve, and every notification is shown as sent.
4. Where the data and the dashboards are.

`short=True` (the test suite's mode) uses coarser history and shorter waits.
"""

from __future__ import annotations

from app.demo.story import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
