"""The data path's I/O edge: listeners, client connections, relays, server connections and
their pool, and splice(2). The decisions are the exchanges' (tcpvs/exchange)."""

from tcpvs import compiled

compiled.use()
