"""The check grammar's quoting, on its own (stdlib `re` only): pyipvsadm reads checks out of
its rule files with it without importing the whole grammar (tcpvs.health.spec)."""

from __future__ import annotations

import re

# A double-quoted word, in which \" is a quote and \\ a backslash (other backslashes stay).
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_UNESCAPE = re.compile(r'\\([\\"])')


def unescape(quoted_body: str) -> str:
    """The text of a quoted word's body (between its quotes)."""
    return _UNESCAPE.sub(r"\1", quoted_body)


def unquote(text: str) -> str:
    """`text` itself, or its content when it is one whole quoted word."""
    quoted = QUOTED.fullmatch(text)
    return unescape(quoted.group(1)) if quoted else text
