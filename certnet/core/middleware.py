"""Refuse oversized request bodies with 413 before any view reads them."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit: int = settings.CERTNET_MAX_REQUEST_BYTES
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
        return self.get_response(request)


def _problem(status: int, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )
