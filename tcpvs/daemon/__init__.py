"""tcpvsd: the daemon (tcpvsd), and with --workers N its master and worker processes."""
