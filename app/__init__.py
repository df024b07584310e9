"""The application: the `waystation` command and the tools that wire the parts together.

The top layer of the house. `app.cli` is the command line (one module per
command); `app.checks` checks every file a service will use, across files;
`app.demo` plays a simulated district through the real pipeline;
`app.localservers` starts Mosquitto and InfluxDB on free loopback ports;
`app.brokerconfig` and `app.influxsetup` prepare a broker and an InfluxDB 2.x;
`app.monthly` runs the monthly allocation inside the rules service. It may
import every part (`edge`, `ingest`, `rules`, `dashboards`, `waystation`);
no part imports it.
"""
