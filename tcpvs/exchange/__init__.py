"""Sans-IO exchanges: what one client connection means, decided without doing any I/O.

An exchange takes events (bytes from the client, a server connection ready or lost, bytes
from the server, a deadline passed) and answers with actions on its Port (send these bytes,
open a connection to that server, pass the next N bytes along as they are, close). The
I/O edge (tcpvs/proxy) turns events into calls and actions into socket operations; the unit
tests drive an exchange with a recording Port. `http1` is HTTP/1.x, `tcp` a raw TCP relay.
"""

from tcpvs import compiled

compiled.use()
