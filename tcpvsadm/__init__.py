"""tcpvsadm: the KTCPVS admin tool, driving tcpvsd over its control socket."""
