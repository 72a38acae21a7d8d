"""A stable identity for a real server, derived from its address alone.

The same address gives the same digest in every process and on every host (unlike Python's
salted `hash()`), so cookies (chttp) and hash placements (hhttp) survive restarts.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b

from tcpvs.table.addr import Address

DIGEST_SIZE = 8  # 64 bits: 16 hex characters in a cookie, one machine word for hashing


@lru_cache(maxsize=4096)  # bounded: servers come and go while the daemon runs
def server_digest(address: Address) -> bytes:
    """blake2b of the `host:port` text (IPv6 hosts in brackets)."""
    return blake2b(str(address).encode("ascii"), digest_size=DIGEST_SIZE).digest()
