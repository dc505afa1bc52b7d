"""Reads for the TAXII server: which collections a caller may read or write, and pages of the objects in
one, always from `TaxiiObject.objects.restrict(user)` so each reader sees what visibility admits."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Max, Min, Q, QuerySet, TextField
from django.db.models.functions import Cast

from certnet.core.errors import DomainError
from certnet.core.roles import Role
from certnet.core.visibility import Principal, RestrictedQuerySet, principal_for
from certnet.registry.models import Organisation
from certnet.registry.selectors import descendants_of
from certnet.taxii.models import Audience, TaxiiCollection, TaxiiObject, TaxiiStatus

if TYPE_CHECKING:
    from certnet.core.visibility import UserLike

MEDIA_STIX = "application/stix+json;version=2.1"


class BadRequest(DomainError):
    """A query parameter the server cannot read (a timestamp, a limit, a `next` token)."""


# --- timestamps ------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?Z$")


def parse_timestamp(text: str) -> dt.datetime | None:
    """A STIX/TAXII timestamp ('2024-05-01T10:00:00.123Z', always UTC) as an aware datetime; None when
    it is not one. Digits past the microsecond are dropped: the database keeps microseconds."""
    found = _TIMESTAMP.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=dt.UTC
        )
    except ValueError:
        return None


def format_timestamp(moment: dt.datetime) -> str:
    """Always six fractional digits, so a date_added read back as added_after names the same instant."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- who may read and write a collection ----------------------------------------------------------


@dataclass(frozen=True)
class CollectionAccess:
    collection: TaxiiCollection
    can_read: bool
    # The caller's organisations on whose behalf they may add objects (analyst or above there, and the
    # organisation is itself one the collection's audience admits).
    writer_org_ids: frozenset[int]

    @property
    def can_write(self) -> bool:
        return bool(self.writer_org_ids)


@dataclass
class _Registry:
    """The registry facts audiences are resolved against, read once per request."""

    by_sector: dict[str, set[int]] = field(default_factory=dict)
    by_province: dict[str, set[int]] = field(default_factory=dict)
    by_slug: dict[str, int] = field(default_factory=dict)
    everyone: set[int] = field(default_factory=set)

    @classmethod
    def load(cls) -> _Registry:
        facts = cls()
        for pk, sector, province, slug in Organisation.objects.values_list(
            "pk", "sector", "province", "slug"
        ):
            facts.everyone.add(pk)
            facts.by_slug[slug] = pk
            if sector:
                facts.by_sector.setdefault(sector, set()).add(pk)
            if province:
                facts.by_province.setdefault(province, set()).add(pk)
        return facts

    def members(self, collection: TaxiiCollection) -> frozenset[int]:
        if collection.audience == Audience.COMMUNITY:
            return frozenset(self.everyone)
        if collection.audience == Audience.SECTOR:
            return frozenset(self.by_sector.get(collection.target, ()))
        if collection.audience == Audience.PROVINCE:
            return frozenset(self.by_province.get(collection.target, ()))
        found = self.by_slug.get(collection.target)
        return frozenset({found} if found is not None else ())


def audience_organisations(collection: TaxiiCollection) -> frozenset[int]:
    """The organisations a collection's audience names (every organisation for the community)."""
    return _Registry.load().members(collection)


def _spans(principal: Principal) -> dict[int, frozenset[int]]:
    """Each organisation where the caller is analyst or above, with the organisations below it: an
    audience that names any of them admits that organisation as a writer."""
    return {
        org_id: frozenset({org_id} | descendants_of([org_id])) for org_id in principal.orgs_with(Role.ANALYST)
    }


def _access(
    principal: Principal,
    collection: TaxiiCollection,
    registry: _Registry,
    spans: dict[int, frozenset[int]],
) -> CollectionAccess:
    community = collection.audience == Audience.COMMUNITY
    members = frozenset() if community else registry.members(collection)
    # A member of an audience organisation, or of one above it (reach: own organisations and below).
    readable = principal.is_platform_admin or (
        principal.is_member if community else bool(principal.reach() & members)
    )
    writers = frozenset(org_id for org_id, span in spans.items() if community or span & members)
    return CollectionAccess(collection, readable or bool(writers), writers)


def readable_collections(user: UserLike | None) -> list[CollectionAccess]:
    """The collections the user may read, by audience and target."""
    principal = principal_for(user)
    if not principal.is_authenticated:
        return []
    registry, spans = _Registry.load(), _spans(principal)
    found = (_access(principal, collection, registry, spans) for collection in TaxiiCollection.objects.all())
    return [access for access in found if access.can_read]


def collection_access(user: UserLike | None, collection_id: str) -> CollectionAccess | None:
    """The collection and the user's rights on it; None when no collection has that id."""
    try:
        key = uuid.UUID(collection_id)
    except ValueError:
        return None
    collection = TaxiiCollection.objects.filter(pk=key).first()
    if collection is None:
        return None
    principal = principal_for(user)
    return _access(principal, collection, _Registry.load(), _spans(principal))


def status_for(user: UserLike | None, status_id: str) -> TaxiiStatus | None:
    """A status resource, for the user who made the request only."""
    principal = principal_for(user)
    try:
        key = uuid.UUID(status_id)
    except ValueError:
        return None
    if principal.user_id is None:
        return None
    return TaxiiStatus.objects.filter(pk=key, user_id=principal.user_id).first()


# --- filters and pages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectFilter:
    """What the query string asked for. Versions: `last` (the default), `first`, `all`, and exact
    instants may be combined; with `all` the others do not narrow anything."""

    added_after: dt.datetime | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    spec_versions: tuple[str, ...] = ()
    all_versions: bool = False
    first: bool = False
    last: bool = True
    version_at: tuple[dt.datetime, ...] = ()


@dataclass(frozen=True)
class Cursor:
    added_at: dt.datetime
    pk: int

    def encode(self) -> str:
        micros = int(self.added_at.timestamp()) * 1_000_000 + self.added_at.microsecond
        return base64.urlsafe_b64encode(f"{micros}.{self.pk}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
            micros, pk = (int(part) for part in text.split("."))
            moment = dt.datetime.fromtimestamp(micros // 1_000_000, tz=dt.UTC)
            return cls(moment.replace(microsecond=micros % 1_000_000), pk)
        except (ValueError, UnicodeDecodeError, binascii.Error, OverflowError, OSError):
            raise BadRequest(f"next: {token!r} is not a token this server gave out") from None


@dataclass(frozen=True)
class Page:
    """One page: `rows` as the endpoint wants them, and what the envelope and headers need."""

    rows: list[Any]
    more: bool
    next: str | None
    first_added: dt.datetime | None
    last_added: dt.datetime | None


def visible_objects(user: UserLike | None, collection: TaxiiCollection) -> RestrictedQuerySet[TaxiiObject]:
    """What the user may see in full in the collection: a RED object shows only to its author and
    named users (TAXII serves no stubs)."""
    return TaxiiObject.objects.restrict(user, "view").filter(collection=collection)


def filtered_objects(
    user: UserLike | None, collection: TaxiiCollection, wanted: ObjectFilter
) -> QuerySet[TaxiiObject]:
    """The visible objects matching every filter but first/last (see _VersionCheck)."""
    found: QuerySet[TaxiiObject] = visible_objects(user, collection)
    if wanted.ids:
        found = found.filter(stix_id__in=wanted.ids)
    if wanted.types:
        found = found.filter(type__in=wanted.types)
    if wanted.spec_versions:
        found = found.filter(spec_version__in=wanted.spec_versions)
    if not wanted.all_versions and not wanted.first and not wanted.last:
        found = found.filter(version_at__in=list(wanted.version_at))
    if wanted.added_after is not None:
        found = found.filter(added_at__gt=wanted.added_after)
    return found


@dataclass
class _VersionCheck:
    """match[version]=first/last, judged a page at a time: one grouped query finds the first and last
    version, among those the reader sees, of the objects on the page. Done in SQL for every row (NOT
    EXISTS a newer visible version) it made PostgreSQL hash the whole collection for each page."""

    user: UserLike | None
    collection: TaxiiCollection
    wanted: ObjectFilter

    @property
    def needed(self) -> bool:
        return not self.wanted.all_versions and (self.wanted.first or self.wanted.last)

    def keep(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Rows are (pk, added_at, stix_id, version_at, …)."""
        bounds = {
            stix_id: (first, last)
            for stix_id, first, last in visible_objects(self.user, self.collection)
            .filter(stix_id__in={row[2] for row in rows})
            .values("stix_id")
            .annotate(first=Min("version_at"), last=Max("version_at"))
            .values_list("stix_id", "first", "last")
        }
        instants = set(self.wanted.version_at)
        kept = []
        for row in rows:
            first, last = bounds.get(row[2], (None, None))
            if (
                (self.wanted.last and row[3] == last)
                or (self.wanted.first and row[3] == first)
                or row[3] in instants
            ):
                kept.append(row)
        return kept


def _after(queryset: QuerySet[TaxiiObject], cursor: Cursor) -> QuerySet[TaxiiObject]:
    # The >= bound lets the (collection, added_at) index start the scan; the OR settles a tie.
    return queryset.filter(added_at__gte=cursor.added_at).filter(
        Q(added_at__gt=cursor.added_at) | Q(pk__gt=cursor.pk)
    )


def _page(
    queryset: QuerySet[TaxiiObject],
    columns: Sequence[str],
    limit: int,
    after: str | None,
    check: _VersionCheck | None = None,
) -> Page:
    """Keyset paging on (added_at, id): each page is an index range scan from where the last one ended,
    never an OFFSET. Rows are (id, added_at, stix_id, version_at, *columns); a page carries `columns`
    (a bare value when there is one). With a version check, rows are read in slices of a page until a
    page's worth pass it."""
    cursor = Cursor.decode(after) if after else None
    wanted = limit + 1  # one more than the page says whether there is more
    found: list[tuple[Any, ...]] = []
    while len(found) < wanted:
        scope = _after(queryset, cursor) if cursor else queryset
        ordered = scope.order_by("added_at", "pk")
        chunk = list(ordered.values_list("pk", "added_at", "stix_id", "version_at", *columns)[:wanted])
        found += check.keep(chunk) if check is not None and chunk else chunk
        if len(chunk) < wanted or check is None:
            break
        cursor = Cursor(chunk[-1][1], chunk[-1][0])
    more = len(found) > limit
    rows = found[:limit]
    if not rows:
        return Page([], False, None, None, None)
    last = rows[-1]
    return Page(
        rows=[row[4:] if len(columns) > 1 else row[4] for row in rows],
        more=more,
        next=Cursor(last[1], last[0]).encode() if more else None,
        first_added=rows[0][1],
        last_added=last[1],
    )


def _checked_page(
    user: UserLike | None,
    collection: TaxiiCollection,
    wanted: ObjectFilter,
    columns: Sequence[str],
    limit: int,
    after: str | None,
) -> Page:
    check = _VersionCheck(user, collection, wanted)
    queryset = filtered_objects(user, collection, wanted)
    if "text" in columns:
        queryset = queryset.annotate(text=Cast("body", output_field=TextField()))
    return _page(queryset, columns, limit, after, check if check.needed else None)


def objects_page(
    user: UserLike | None, collection: TaxiiCollection, wanted: ObjectFilter, limit: int, after: str | None
) -> Page:
    """A page of objects; rows are each object's stored JSON text, to be joined into the envelope as
    they are (no object is parsed or re-serialised on the way out)."""
    return _checked_page(user, collection, wanted, ["text"], limit, after)


def manifest_page(
    user: UserLike | None, collection: TaxiiCollection, wanted: ObjectFilter, limit: int, after: str | None
) -> Page:
    """A page of manifest records (id, date_added, version, media_type)."""
    page = _checked_page(user, collection, wanted, ["stix_id", "added_at", "version"], limit, after)
    rows = [
        {"id": stix_id, "date_added": format_timestamp(added), "version": version, "media_type": MEDIA_STIX}
        for stix_id, added, version in page.rows
    ]
    return Page(rows, page.more, page.next, page.first_added, page.last_added)


def versions_page(
    user: UserLike | None,
    collection: TaxiiCollection,
    stix_id: str,
    wanted: ObjectFilter,
    limit: int,
    after: str | None,
) -> Page:
    """A page of the version strings of one object, oldest added first."""
    scoped = ObjectFilter(
        added_after=wanted.added_after, ids=(stix_id,), spec_versions=wanted.spec_versions, all_versions=True
    )
    return _page(filtered_objects(user, collection, scoped), ["version"], limit, after)


def object_exists(user: UserLike | None, collection: TaxiiCollection, stix_id: str) -> bool:
    """Whether the user sees any version of the object in the collection (else the endpoint is a 404)."""
    return visible_objects(user, collection).filter(stix_id=stix_id).exists()


def known_versions(collection: TaxiiCollection, keys: Iterable[str]) -> set[tuple[str, str]]:
    """(stix_id, version) pairs already in the collection among these ids, whoever may see them: an
    add never stores the same version twice."""
    rows = TaxiiObject.objects.filter(collection=collection, stix_id__in=set(keys))
    return set(rows.values_list("stix_id", "version"))


def organisations_by_id(org_ids: Iterable[int]) -> dict[int, Organisation]:
    return Organisation.objects.in_bulk(set(org_ids))
