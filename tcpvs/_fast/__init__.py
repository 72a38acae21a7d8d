"""tcpvs's code compiled against C libraries, with no pure-Python source: the TLS layer."""
