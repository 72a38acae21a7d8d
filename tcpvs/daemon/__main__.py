"""`python -m tcpvs.daemon`: run tcpvsd."""

from tcpvs.daemon.tcpvsd import main

main()
