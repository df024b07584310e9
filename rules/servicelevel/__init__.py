"""The monthly service-level scorecard: how well each station and operator kept its services.

From the readings ingest stored (so a month can be recomputed when the rules
service was down), in the station's local time, the month cut at local
midnight: for each station's services (`station`, `hot_water`, `charging`,
`visits`) the availability inside opening hours and the outages, per station
and per operator (`scorecard`); what to read and how (`source`); the
definitions' pieces (`spans`, `runs`, `opening`); the exports (`export`).
It imports neither the outage rules nor the allocation: `app` wires it next
to the allocation in the monthly report.
"""
