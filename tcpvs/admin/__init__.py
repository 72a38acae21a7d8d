"""tcpvsd's admin address (`--admin`): Prometheus metrics, the stats page and its data, over
HTTP; off unless asked for, loopback unless told otherwise."""
