"""The switch's own answers: small complete HTTP/1.1 responses (errors, and the redirect to
https) that close the connection."""

from __future__ import annotations

import re
from functools import cache
from http import HTTPStatus
from typing import Any

# RFC 9110 phrases (HTTPStatus still says "Payload Too Large" on older Pythons).
_REASONS = {413: "Content Too Large", 431: "Request Header Fields Too Large"}


@cache
def error_response(status: int, detail: str = "") -> bytes:
    """A complete response for `status` with a text body (saying `detail` too, if given) and
    `Connection: close`.

    Any known status works (400, 404, 408, 413, 417, 431, 500, 501, 502, 503, 504, 505 are the
    switch's own); ValueError for an unknown one.
    """
    reason = _REASONS.get(status) or HTTPStatus(status).phrase
    body = f"{status} {reason}{': ' if detail else ''}{detail}\n".encode("ascii")
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii") + body


# The first bytes of a plain HTTP request: a method token and its space (or all there is yet).
_PLAIN_HTTP = re.compile(rb"[A-Z]{1,20}(?: |$)")
PLAIN_HTTP_TO_TLS = error_response(400, "a plain HTTP request was sent to a TLS port")


def plain_http_answer(first: bytes) -> bytes | None:
    """What to answer when a TLS port's first bytes are `first` and they are not a TLS
    record: a plain 400 if they start like an HTTP request (nginx's "The plain HTTP request
    was sent to HTTPS port"), so that a user who typed http:// reads why; None otherwise."""
    return PLAIN_HTTP_TO_TLS if _PLAIN_HTTP.match(first[:21]) else None


# A Host value that can go into a Location header as it is: a name or address, and a port.
_HOST = re.compile(rb"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_HOST_LINE = re.compile(rb"\r\nhost:[ \t]*([^\r]*?)[ \t]*\r\n", re.IGNORECASE)


def https_location(head: Any) -> bytes | None:
    """`https://` + the request's host (its Host header, or an absolute-form target's) + its
    path and query; None when there is no usable host (the answer is then 400)."""
    target: bytes = head.target
    if target.startswith(b"/"):
        found = _HOST_LINE.search(head.raw)
        host = found.group(1) if found else b""
        path = target
    else:  # absolute-form: http://host[:port]/path
        _, _, rest = target.partition(b"://")
        host, slash, path = rest.partition(b"/")
        path = slash + path or b"/"
    if not _HOST.fullmatch(host):
        return None
    if host.endswith(b":80"):  # the plain port says nothing about the https one
        host = host[:-3]
    return b"https://" + host + path


def redirect_response(status: int, location: bytes) -> bytes:
    """A `status` (301, 308) response sending the client to `location`, closing."""
    reason = HTTPStatus(status).phrase
    body = b"%d %s: %s\n" % (status, reason.encode("ascii"), location)
    return (
        b"HTTP/1.1 %d %s\r\nLocation: %s\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n"
    ) % (status, reason.encode("ascii"), location, len(body)) + body
