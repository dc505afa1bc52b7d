"""Refuse oversized request bodies (413) and NUL characters (400) before any view reads them.

Bodies are limited to CERTNET_MAX_REQUEST_BYTES, except on the paths CERTNET_UPLOAD_LIMITS names
(regular expressions matched from the start of the path, each with its own limit in bytes): those
carry files, so settings give them room for a file and its encoding. The first pattern that matches
decides.

NUL has no place in any field certnet stores, and PostgreSQL rejects it in text, so it is refused
at the door with a message rather than failing deep in a query."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = _limit_for(request.path_info)
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return _problem(400, "Bad request", f"Content-Length {declared!r} is not a number")
        if length > limit:
            return _problem(
                413,
                "Request too large",
                f"the request body is {length} bytes; the limit is {limit} bytes",
            )
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            return _problem(400, "Bad request", "the query string contains a NUL character (%00)")
        if length and request.content_type in _TEXT_BODIES:
            body = request.body
            if b"\x00" in body or b"\\u0000" in body:
                return _problem(400, "Bad request", "the request body contains a NUL character")
        return self.get_response(request)


def _limit_for(path: str) -> int:
    for pattern, limit in getattr(settings, "CERTNET_UPLOAD_LIMITS", ()):
        if re.match(pattern, path):
            return int(limit)
    return int(settings.CERTNET_MAX_REQUEST_BYTES)


_TEXT_BODIES = {"application/json", "application/x-www-form-urlencoded", "text/plain"}


def _problem(status: int, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )
