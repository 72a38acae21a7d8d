"""What tcpvsd tells its operator besides the counters: the access log, and its own log lines."""
