"""DL/T 645-2007 electricity meters (the `dlt645` package), over TCP or RS-485."""
