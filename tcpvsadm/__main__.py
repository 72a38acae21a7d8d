"""`python -m tcpvsadm`: the same as the `tcpvsadm` command."""

from tcpvsadm.cli import main

main()
