"""`hhttp`: the same key always goes to the same server: a hash of the rule's sub-expression.

The key is group `rule.match` of the rule's match on the URI (0 = the whole match), e.g. the
user name in `/users/([^/]+)/`. Placement is weighted rendezvous hashing (highest random
weight, logarithmic method): each candidate scores `-ln(u) / weight` with `u` a stable
pseudo-random number in (0, 1) from the key and the server's address, and the lowest score
wins. So a key keeps its server while the candidates are unchanged (in any order, in any
process), a new server takes only its weight's share of keys from the others, and removing a
server moves only its own keys. Connection counts are ignored, as in KTCPVS.

Fixed KTCPVS defects: it summed the matched bytes as signed chars modulo the server count
(one server more or less remaps almost every key; bytes >= 0x80 gave no server), ignored
weights, and refused matches starting at offset 0. When there is no key (no rule, or the
sub-expression did not take part in the match) tcpvs falls back to wlc where KTCPVS
answered "no server".
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from hashlib import blake2b
from math import log

from tcpvs.sched.base import ScheduleContext, Scheduler
from tcpvs.sched.leastconn import weighted_least_conns
from tcpvs.sched.serverid import server_digest
from tcpvs.table.addr import Address
from tcpvs.table.model import RealServer

MASK64 = (1 << 64) - 1
UNIT = 1.0 / (1 << 52)


@lru_cache(maxsize=4096)
def server_seed(address: Address) -> int:
    """The server's stable digest as a 64-bit number."""
    return int.from_bytes(server_digest(address), "little")


def rendezvous(key: bytes, servers: Sequence[RealServer]) -> RealServer | None:
    """The candidate that `key` belongs to under weighted rendezvous hashing."""
    hashed = int.from_bytes(blake2b(key, digest_size=8).digest(), "little")
    best = None
    best_score = 0.0
    for server in servers:
        # splitmix64 of key xor server seed: a uniform 64-bit number per (key, server)
        z = ((hashed ^ server_seed(server.address)) + 0x9E3779B97F4A7C15) & MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        unit = (((z ^ (z >> 31)) >> 12) + 0.5) * UNIT  # 52 bits: exactly in (0, 1)
        score = -log(unit) / server.weight
        if best is None or score < best_score:
            best, best_score = server, score
    return best


class HhttpScheduler(Scheduler):
    name = "hhttp"
    http = True

    def select(self, servers: Sequence[RealServer], ctx: ScheduleContext) -> RealServer | None:
        rule, found = ctx.rule, ctx.match
        key = found.group(rule.match) if rule is not None and found is not None else None
        if key is None:
            return weighted_least_conns(servers)
        return rendezvous(key, servers)
