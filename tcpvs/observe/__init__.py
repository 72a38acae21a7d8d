"""What tcpvsd tells its operator besides the counters: the access log (compiled like the data
path: it runs once per request when on)."""

from tcpvs import compiled

compiled.use()
