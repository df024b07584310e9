"""The edge agent: reads station devices and publishes them over MQTT.

Installs with `pip install waystation[edge]` and imports no server-side
package (InfluxDB client, HTTP pools, report libraries); a test holds it to that.
"""
