"""The switch's own answers: small complete HTTP/1.1 error responses that close the connection."""

from __future__ import annotations

from functools import cache
from http import HTTPStatus

# RFC 9110 phrases (HTTPStatus still says "Payload Too Large" on older Pythons).
_REASONS = {413: "Content Too Large", 431: "Request Header Fields Too Large"}


@cache
def error_response(status: int) -> bytes:
    """A complete response for `status` with a text body and `Connection: close`.

    Any known status works (400, 404, 408, 413, 417, 431, 500, 501, 502, 503, 504, 505 are the
    switch's own); ValueError for an unknown one.
    """
    reason = _REASONS.get(status) or HTTPStatus(status).phrase
    body = f"{status} {reason}\n".encode("ascii")
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii") + body
