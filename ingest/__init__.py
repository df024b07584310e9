"""Ingest: MQTT → validation → batched, acknowledged writes to InfluxDB."""
