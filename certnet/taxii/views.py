"""The TAXII 2.1 endpoints: HTTP in (credentials, media types, query parameters), TAXII JSON out.
What a caller may read or add is decided in certnet.taxii.services and selectors."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from certnet.accounts.models import User
from certnet.accounts.selectors import user_for_token
from certnet.core.errors import DomainError
from certnet.taxii import selectors, services
from certnet.taxii.selectors import BadRequest, CollectionAccess, ObjectFilter, Page

MEDIA_TAXII = "application/taxii+json;version=2.1"
DEFAULT_LIMIT = int(getattr(settings, "CERTNET_TAXII_DEFAULT_LIMIT", 1000))
MAX_LIMIT = int(getattr(settings, "CERTNET_TAXII_MAX_LIMIT", 10_000))
REALM = 'realm="certnet TAXII"'

View = Callable[..., HttpResponse]


class TaxiiError(Exception):
    def __init__(
        self, status: int, title: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.title = title
        self.description = description
        self.headers = headers or {}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    response = HttpResponse(text.encode("utf-8"), status=status, content_type=MEDIA_TAXII)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _error(error: TaxiiError) -> HttpResponse:
    body = {"title": error.title, "description": error.description, "http_status": str(error.status)}
    return _json(body, error.status, error.headers)


def _max_content_length() -> int:
    return int(settings.CERTNET_TAXII_MAX_CONTENT_LENGTH)


# --- credentials and media types ----------------------------------------------------------------------


def _authenticate(request: HttpRequest) -> User | None:
    """A bearer API token, or HTTP Basic with the user's name and an API token of theirs as password
    (what TAXII clients send by default)."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return user_for_token(credentials)
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, separator, token = decoded.partition(":")
        user = user_for_token(token) if separator else None
        return user if user is not None and user.get_username() == username else None
    return None


def _media_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    ranges = []
    for item in header.split(","):
        kind, *parameters = (part.strip() for part in item.split(";"))
        params = {}
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        if kind:
            ranges.append((kind.lower(), params))
    return ranges


def _accepts_taxii(request: HttpRequest) -> bool:
    header = request.headers.get("Accept", "").strip()
    if not header:
        return True  # no Accept header: any representation will do
    for kind, params in _media_ranges(header):
        try:
            refused = float(params.get("q", "1")) <= 0
        except ValueError:
            refused = False
        if refused:
            continue
        if kind in ("*/*", "application/*"):
            return True
        if kind == "application/taxii+json" and params.get("version", "2.1") == "2.1":
            return True
    return False


def _is_taxii_body(request: HttpRequest) -> bool:
    ranges = _media_ranges(request.headers.get("Content-Type", ""))
    return (
        len(ranges) == 1 and ranges[0][0] == "application/taxii+json" and ranges[0][1].get("version") == "2.1"
    )


def taxii_endpoint(*methods: str) -> Callable[[View], View]:
    """Credentials (401), the method (405) and Accept (406) for every endpoint, and domain errors
    turned into TAXII error messages."""

    def decorate(view: View) -> View:
        @csrf_exempt  # API tokens, never cookies: no cross-site request can carry a caller's rights
        @wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            try:
                user = _authenticate(request)
                if user is None:
                    raise TaxiiError(
                        401,
                        "Unauthorized",
                        "send an API token: HTTP Basic with your user name and the token as password, "
                        "or 'Authorization: Bearer <token>'",
                        {"WWW-Authenticate": f"Basic {REALM}, Bearer {REALM}"},
                    )
                request.user = user
                if request.method not in methods:
                    raise TaxiiError(
                        405,
                        "Method not allowed",
                        f"use {' or '.join(methods)}",
                        {"Allow": ", ".join(methods)},
                    )
                if not _accepts_taxii(request):
                    raise TaxiiError(406, "Not acceptable", f"this server answers in {MEDIA_TAXII}")
                return view(request, user, **kwargs)
            except TaxiiError as error:
                return _error(error)
            except DomainError as error:
                status = 400 if isinstance(error, BadRequest) else error.status
                return _error(TaxiiError(status, error.title, error.detail))

        return wrapper

    return decorate


# --- query parameters --------------------------------------------------------------------------------


def _values(request: HttpRequest, name: str) -> tuple[str, ...]:
    return tuple(
        part.strip() for value in request.GET.getlist(name) for part in value.split(",") if part.strip()
    )


def _limit(request: HttpRequest) -> int:
    text = request.GET.get("limit")
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise BadRequest(f"limit: {text!r} is not a positive whole number")
    return min(int(text), MAX_LIMIT)  # a server may return fewer than asked; `more` says so


def _filter(request: HttpRequest) -> ObjectFilter:
    added_after = None
    if "added_after" in request.GET:
        added_after = selectors.parse_timestamp(request.GET["added_after"])
        if added_after is None:
            raise BadRequest(f"added_after: {request.GET['added_after']!r} is not a timestamp (…T…Z)")
    words = {"first": False, "last": False, "all": False}
    instants = []
    versions = _values(request, "match[version]") or ("last",)
    for version in versions:
        if version in words:
            words[version] = True
        elif (instant := selectors.parse_timestamp(version)) is not None:
            instants.append(instant)
        else:
            raise BadRequest(f"match[version]: {version!r} is not last, first, all or a timestamp")
    return ObjectFilter(
        added_after=added_after,
        ids=_values(request, "match[id]"),
        types=_values(request, "match[type]"),
        spec_versions=_values(request, "match[spec_version]"),
        all_versions=words["all"],
        first=words["first"],
        last=words["last"],
        version_at=tuple(instants),
    )


def _date_headers(page: Page) -> dict[str, str]:
    if page.first_added is None or page.last_added is None:
        return {}
    return {
        "X-TAXII-Date-Added-First": selectors.format_timestamp(page.first_added),
        "X-TAXII-Date-Added-Last": selectors.format_timestamp(page.last_added),
    }


def _envelope_head(page: Page) -> dict[str, Any]:
    head: dict[str, Any] = {"more": page.more}
    if page.next:
        head["next"] = page.next
    return head


def _readable(user: User, collection_id: str) -> CollectionAccess:
    access = selectors.collection_access(user, collection_id)
    if access is None:
        raise TaxiiError(404, "Not found", f"no collection {collection_id}")
    if not access.can_read:
        raise TaxiiError(403, "Forbidden", "you may not read this collection")
    return access


def _collection_resource(access: CollectionAccess) -> dict[str, Any]:
    collection = access.collection
    resource: dict[str, Any] = {
        "id": str(collection.pk),
        "title": collection.title,
        "can_read": access.can_read,
        "can_write": access.can_write,
        "media_types": [selectors.MEDIA_STIX],
    }
    if collection.description:
        resource["description"] = collection.description
    return resource


# --- endpoints ---------------------------------------------------------------------------------------


@taxii_endpoint("GET")
def discovery(request: HttpRequest, user: User) -> HttpResponse:
    root = request.build_absolute_uri(reverse("taxii:api-root"))
    return _json(
        {
            "title": "certnet TAXII server",
            "description": "Threat intelligence of the CERT network, per audience, under TLP.",
            "contact": settings.DEFAULT_FROM_EMAIL,
            "default": root,
            "api_roots": [root],
        }
    )


@taxii_endpoint("GET")
def api_root(request: HttpRequest, user: User) -> HttpResponse:
    return _json(
        {
            "title": "certnet",
            "description": "Collections for the community, each sector, each province and organisations.",
            "versions": [MEDIA_TAXII],
            "max_content_length": _max_content_length(),
        }
    )


@taxii_endpoint("GET")
def collections(request: HttpRequest, user: User) -> HttpResponse:
    found = [_collection_resource(access) for access in services.collections_for(user)]
    return _json({"collections": found} if found else {})


@taxii_endpoint("GET")
def collection(request: HttpRequest, user: User, collection_id: str) -> HttpResponse:
    return _json(_collection_resource(_readable(user, collection_id)))


@taxii_endpoint("GET", "POST")
def objects(request: HttpRequest, user: User, collection_id: str) -> HttpResponse:
    if request.method == "POST":
        return _add_objects(request, user, collection_id)
    access = _readable(user, collection_id)
    page = selectors.objects_page(
        user, access.collection, _filter(request), _limit(request), request.GET.get("next")
    )
    return _objects_envelope(page)


def _objects_envelope(page: Page) -> HttpResponse:
    # The objects are the stored JSON texts, joined as they are: one page is one string operation.
    head = json.dumps(_envelope_head(page), separators=(",", ":"))
    text = head[:-1] + ',"objects":[' + ",".join(page.rows) + "]}" if page.rows else head
    return _json(text, headers=_date_headers(page))


def _add_objects(request: HttpRequest, user: User, collection_id: str) -> HttpResponse:
    limit = _max_content_length()
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise TaxiiError(413, "Too large", f"the envelope is {declared} bytes; the limit is {limit} bytes")
    if not _is_taxii_body(request):
        raise TaxiiError(415, "Unsupported media type", f"send the envelope as Content-Type: {MEDIA_TAXII}")
    body = request.body
    if len(body) > limit:
        raise TaxiiError(413, "Too large", f"the envelope is {len(body)} bytes; the limit is {limit} bytes")
    if b"\x00" in body or b"\\u0000" in body:
        raise TaxiiError(422, "Invalid envelope", "the envelope contains a NUL character")
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TaxiiError(422, "Invalid envelope", f"the request body is not JSON: {exc}") from None
    status = services.add_objects(
        actor=user,
        collection_id=collection_id,
        envelope=envelope,
        organisation=request.headers.get("X-Certnet-Organisation") or None,
    )
    return _json(status, 202)


@taxii_endpoint("GET")
def object_detail(request: HttpRequest, user: User, collection_id: str, object_id: str) -> HttpResponse:
    access = _readable(user, collection_id)
    wanted = _filter(request)
    scoped = dataclasses.replace(wanted, ids=(object_id,))
    page = selectors.objects_page(user, access.collection, scoped, _limit(request), request.GET.get("next"))
    if not page.rows and not selectors.object_exists(user, access.collection, object_id):
        raise TaxiiError(404, "Not found", f"no object {object_id} in this collection")
    return _objects_envelope(page)


@taxii_endpoint("GET")
def object_versions(request: HttpRequest, user: User, collection_id: str, object_id: str) -> HttpResponse:
    access = _readable(user, collection_id)
    page = selectors.versions_page(
        user, access.collection, object_id, _filter(request), _limit(request), request.GET.get("next")
    )
    if not page.rows and not selectors.object_exists(user, access.collection, object_id):
        raise TaxiiError(404, "Not found", f"no object {object_id} in this collection")
    body = _envelope_head(page)
    if page.rows:
        body["versions"] = page.rows
    return _json(body, headers=_date_headers(page))


@taxii_endpoint("GET")
def manifest(request: HttpRequest, user: User, collection_id: str) -> HttpResponse:
    access = _readable(user, collection_id)
    page = selectors.manifest_page(
        user, access.collection, _filter(request), _limit(request), request.GET.get("next")
    )
    body = _envelope_head(page)
    if page.rows:
        body["objects"] = page.rows
    return _json(body, headers=_date_headers(page))


@taxii_endpoint("GET")
def status(request: HttpRequest, user: User, status_id: str) -> HttpResponse:
    found = selectors.status_for(user, status_id)
    if found is None:
        raise TaxiiError(404, "Not found", f"no status {status_id}")
    return _json(found.resource)


@taxii_endpoint("GET", "POST", "DELETE")
def unknown(request: HttpRequest, user: User, path: str = "") -> HttpResponse:
    hint = "" if request.path.endswith("/") else " (TAXII URLs end in '/')"
    raise TaxiiError(404, "Not found", f"no TAXII endpoint at {request.path}{hint}")
