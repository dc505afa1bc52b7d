"""The HTTP API at /api/v1: one NinjaAPI, authentication, and domain errors mapped to problem+json once."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from certnet.accounts.api import api_auth
from certnet.accounts.api import router as accounts_router
from certnet.core.errors import DomainError
from certnet.feeds.api import router as feeds_router
from certnet.incidents.api import router as incidents_router
from certnet.intel.api import router as intel_router
from certnet.intel.api_sharing import router as intel_sharing_router
from certnet.notifications.api import router as notifications_router
from certnet.registry.api import router as registry_router


class CertnetAPI(NinjaAPI):
    """Keeps the offending value in validation messages: "month must be in 1..12 (got '2025-13-01')"."""

    def validation_error_from_error_contexts(self, error_contexts: list[Any]) -> NinjaValidationError:
        errors: list[dict[str, Any]] = []
        for context in error_contexts:
            model = context.model
            for err in context.pydantic_validation_error.errors(include_url=False):
                loc = (
                    model.__ninja_param_source__,
                    *model.__ninja_flatten_map_reverse__.get(err["loc"], err["loc"]),
                )
                errors.append({"loc": loc, "msg": _with_input(err), "type": err["type"]})
        return NinjaValidationError(errors)


def _with_input(err: Any) -> str:
    message = str(err.get("msg", "invalid"))
    value = err.get("input")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return f"{message} (got {value!r})"
    return message


api = CertnetAPI(
    title="certnet API",
    version="1",
    description=(
        "The operating platform of a national CERT network. Authenticate with "
        "`Authorization: Bearer <token>` (`certnet token create USER`) or a browser session. "
        "Errors are application/problem+json."
    ),
    auth=api_auth(),
    urls_namespace="api",
)


def problem(request: HttpRequest, status: int, title: str, detail: str, **extra: Any) -> HttpResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    response = api.create_response(request, body, status=status)
    response["Content-Type"] = "application/problem+json"
    return response


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    body = exc.as_problem()
    response = api.create_response(request, body, status=exc.status)
    response["Content-Type"] = "application/problem+json"
    return response


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = problem(
        request, 401, "Unauthorised", "send a valid API token as 'Authorization: Bearer <token>', or log in"
    )
    response["WWW-Authenticate"] = 'Bearer realm="certnet"'
    return response


@api.exception_handler(NinjaValidationError)
def _invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        {"loc": ".".join(str(part) for part in err.get("loc", ())), "msg": str(err.get("msg", "invalid"))}
        for err in exc.errors
    ]
    summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    status = 400 if any(e["loc"] == "body" or "JSON" in e["msg"] for e in errors) else 422
    return problem(
        request, status, "Invalid input" if status == 422 else "Bad request", summary, errors=errors
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem(request, 404, "Not found", str(exc) or "not found")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem(request, exc.status_code, "Error", str(exc))


api.add_router("/", accounts_router)
api.add_router("/", registry_router)
api.add_router("/", incidents_router)
api.add_router("/", intel_sharing_router)  # first: /indicators/export before /indicators/{id}
api.add_router("/", intel_router)
api.add_router("/", notifications_router)
api.add_router("/", feeds_router)
