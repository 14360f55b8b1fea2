"""Upstream calls: the request/response contract and the HTTP/1.1 transport."""

from tianji.upstream.http11 import HttpTransport
from tianji.upstream.types import Timeouts, Transport, UpstreamRequest, UpstreamResponse

__all__ = ["HttpTransport", "Timeouts", "Transport", "UpstreamRequest", "UpstreamResponse"]
