"""The single version string of tcpvs (read by setup tools and printed by the tools)."""

__version__ = "0.1.0"
