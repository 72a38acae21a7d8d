"""The pure-Python implementation as one module, with the same names as tcpvs._fast.httpscan."""

from tcpvs.http.chunked import ChunkedScanner
from tcpvs.http.common import BODY_CHUNKED, BODY_LENGTH, BODY_NONE, BODY_UNTIL_CLOSE, HttpError
from tcpvs.http.heads import RequestHead, ResponseHead, parse_request_head, parse_response_head
from tcpvs.http.responses import error_response

__all__ = [
    "BODY_CHUNKED",
    "BODY_LENGTH",
    "BODY_NONE",
    "BODY_UNTIL_CLOSE",
    "ChunkedScanner",
    "HttpError",
    "RequestHead",
    "ResponseHead",
    "error_response",
    "parse_request_head",
    "parse_response_head",
]
