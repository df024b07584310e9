"""Waystation's shared base: what every part (edge, ingest, rules, dashboards) uses.

The wire contract (`contract`), the station registry (`registry`, `parties`,
`policychecks`, `durations`), settings (`settings`), configuration files and
their errors (`configfile`, `yamlhints`, `validation`, `configerror`), line
protocol and the InfluxDB store (`lineprotocol`, `store`), the MQTT session
adapter and its helpers (`mqttsession`, `mqttclient`, `mqttreasons`,
`backoff`, `logthrottle`, `redact`, `health`). It imports nothing above it:
no part, and not `app` (import-linter checks it in `./dev test`).
"""

__version__ = "0.1.0"
