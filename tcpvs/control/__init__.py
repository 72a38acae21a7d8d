"""The daemon's control socket: JSON-lines protocol, server (in tcpvsd), client (tcpvsadm)."""

from tcpvs.control.protocol import OPS, default_socket_path

__all__ = ["OPS", "default_socket_path"]
