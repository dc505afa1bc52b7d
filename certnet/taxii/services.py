"""Changes to the TAXII server's data: collections made from the registry, a published report's objects
placed in its audience's collections, and objects a client adds. Each is one transaction that appends
to the audit log; who may read the objects afterwards is left to certnet.core.visibility."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Max

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.audit import Actor, SystemActor
from certnet.core.errors import Forbidden, InvalidInput, NotFound
from certnet.core.tlp import STIX_MARKING_IDS, TLP
from certnet.intel.services.stix_import import import_bundle
from certnet.registry.models import Organisation
from certnet.taxii import selectors
from certnet.taxii.models import Audience, TaxiiCollection, TaxiiObject, TaxiiStatus

if TYPE_CHECKING:
    from certnet.intel.models import IntelReport

SYSTEM = SystemActor("taxii")
# The column sizes of TaxiiObject: a STIX id is "<type>--<uuid>" (types are short words), a version a
# timestamp with at most nanoseconds.
MAX_ID_LENGTH, MAX_TYPE_LENGTH, MAX_VERSION_LENGTH = 100, 60, 40
ONE_MICROSECOND = dt.timedelta(microseconds=1)
_TLP_OF_MARKING = {marking: tlp for tlp, marking in STIX_MARKING_IDS.items()}
# AMBER is shared with the organisations an audience names; the community names none in particular, and
# an intel report to the whole community is CLEAR or GREEN, so AMBER there stays with the owner's chain.
_SHARED_AT = (TLP.AMBER, TLP.AMBER_STRICT)


# --- collections -----------------------------------------------------------------------------------


def _words(name: str) -> str:
    return name.replace("-", " ").replace("_", " ").strip().capitalize()


def _describe(audience: Audience, target: str, organisation: Organisation | None = None) -> tuple[str, str]:
    if audience == Audience.COMMUNITY:
        return "Community", "Intelligence for every organisation on the platform."
    if audience == Audience.SECTOR:
        return f"{_words(target)} sector", f"Intelligence for the {target} sector and the CERTs above it."
    if audience == Audience.PROVINCE:
        return f"{_words(target)} province", f"Intelligence for {target} and the CERTs above its bodies."
    name = organisation.name if organisation is not None else target
    return name, f"Intelligence shared with {name} and the CERTs above it."


def _get_or_create(
    audience: Audience, target: str, actor: Actor, organisation: Organisation | None = None
) -> tuple[TaxiiCollection, bool]:
    """Inside a transaction holding the audit chain's lock, so two requests cannot both create it."""
    found = TaxiiCollection.objects.filter(audience=audience, target=target).first()
    if found is not None:
        return found, False
    title, description = _describe(audience, target, organisation)
    collection = TaxiiCollection.objects.create(
        audience=audience, target=target, title=title, description=description, created_at=clock.now()
    )
    audit.record(
        actor=actor,
        action="taxii.collection.create",
        target=collection,
        organisation_id=organisation.pk if organisation is not None else None,
        data={"audience": audience.value, "target": target, "title": title},
    )
    return collection, True


def ensure_collections(*, actor: Actor = SYSTEM) -> list[TaxiiCollection]:
    """The community collection and one per sector and per province that some organisation names.
    Idempotent, and it writes only when one is missing, so it may run before every listing: a sector
    added to the registry has its collection the next time anyone looks."""
    sectors = Organisation.objects.exclude(sector="").values_list("sector", flat=True).distinct()
    provinces = Organisation.objects.exclude(province="").values_list("province", flat=True).distinct()
    wanted = {(Audience.COMMUNITY.value, "")}
    wanted |= {(Audience.SECTOR.value, name) for name in sectors}
    wanted |= {(Audience.PROVINCE.value, name) for name in provinces}
    existing = set(TaxiiCollection.objects.values_list("audience", "target"))
    missing = sorted(wanted - existing)
    if not missing:
        return []
    created: list[TaxiiCollection] = []
    with transaction.atomic():
        audit.lock_chain()
        for audience, target in missing:
            collection, made = _get_or_create(Audience(audience), target, actor)
            if made:
                created.append(collection)
    return created


def collections_for(user: User) -> list[selectors.CollectionAccess]:
    ensure_collections()
    return selectors.readable_collections(user)


def organisation_collection(organisation: Organisation, *, actor: Actor = SYSTEM) -> TaxiiCollection:
    """The collection of one organisation, made the first time something is shared with it."""
    with transaction.atomic():
        audit.lock_chain()
        collection, _ = _get_or_create(Audience.ORGANISATION, organisation.slug, actor, organisation)
    return collection


# --- objects -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One object on its way into a collection."""

    stix_id: str
    type: str
    spec_version: str
    version: str  # "" for an object with neither modified nor created: it is versioned by date added
    version_at: dt.datetime | None
    body: Mapping[str, Any]
    tlp: TLP


def tlp_of(body: Mapping[str, Any], default: TLP) -> TLP:
    """The TLP the object's markings say (the strictest, if several), else `default`. A marking
    definition itself is public: readers need it to understand the markings on everything else."""
    if body.get("type") == "marking-definition":
        return TLP.CLEAR
    refs = body.get("object_marking_refs")
    found = [_TLP_OF_MARKING[ref] for ref in refs if ref in _TLP_OF_MARKING] if isinstance(refs, list) else []
    return max(found, key=lambda label: label.rank) if found else default


def entry_for(body: Mapping[str, Any], default_tlp: TLP) -> Entry:
    """Raises ValueError naming the problem when the object cannot be placed."""
    stix_id, object_type = body.get("id"), body.get("type")
    if not isinstance(stix_id, str) or not isinstance(object_type, str) or "--" not in stix_id:
        raise ValueError("an object needs a type and an id of the form <type>--<uuid>")
    if stix_id.split("--", 1)[0] != object_type:
        raise ValueError(f"id {stix_id!r} does not name the object's type {object_type!r}")
    if len(stix_id) > MAX_ID_LENGTH or len(object_type) > MAX_TYPE_LENGTH:
        raise ValueError(f"id {stix_id[:120]!r} is longer than this server keeps")
    version = body.get("modified") or body.get("created") or ""
    version_at = selectors.parse_timestamp(version) if isinstance(version, str) and version else None
    if version and (version_at is None or len(version) > MAX_VERSION_LENGTH):
        raise ValueError(f"{str(version)[:60]!r} is not a STIX timestamp")
    spec_version = body.get("spec_version", "2.1")
    return Entry(
        stix_id=stix_id,
        type=object_type,
        spec_version=spec_version if isinstance(spec_version, str) else "2.1",
        version=str(version),
        version_at=version_at,
        body=body,
        tlp=tlp_of(body, default_tlp),
    )


def _store(
    collection: TaxiiCollection,
    entries: Sequence[Entry],
    *,
    owner_id: int,
    created_by_id: int | None,
    shared_with: Iterable[int],
    named_users: Iterable[int] = (),
) -> list[TaxiiObject]:
    """Add the entries the collection lacks. Adders to one collection are serialised (the row lock on
    PostgreSQL; SQLite has one writer), so each row's added_at is later than every row before it, by
    at least a microsecond, and commits in that order: a client resuming from the last date added it
    saw misses nothing."""
    TaxiiCollection.objects.select_for_update().get(pk=collection.pk)
    known = selectors.known_versions(collection, (entry.stix_id for entry in entries))
    # An object without modified/created is a cyber observable, immutable by definition: once is enough.
    present = {stix_id for stix_id, _ in known}
    latest = TaxiiObject.objects.filter(collection=collection).aggregate(latest=Max("added_at"))["latest"]
    moment = clock.now()
    if latest is not None and moment <= latest:
        moment = latest + ONE_MICROSECOND
    rows: list[TaxiiObject] = []
    for entry in entries:
        if (entry.stix_id, entry.version) in known or (not entry.version and entry.stix_id in present):
            continue
        known.add((entry.stix_id, entry.version))
        present.add(entry.stix_id)
        rows.append(
            TaxiiObject(
                collection=collection,
                stix_id=entry.stix_id,
                type=entry.type,
                spec_version=entry.spec_version,
                version=entry.version or selectors.format_timestamp(moment),
                version_at=entry.version_at or moment,
                added_at=moment,
                body=dict(entry.body),
                owner_id=owner_id,
                created_by_id=created_by_id,
                tlp=entry.tlp,
            )
        )
        moment += ONE_MICROSECOND
    TaxiiObject.objects.bulk_create(rows, batch_size=1000)
    shared = sorted(set(shared_with))
    through = TaxiiObject.shared_with.through
    links = [
        through(taxiiobject_id=row.pk, organisation_id=org_id)
        for row in rows
        if TLP(row.tlp) in _SHARED_AT
        for org_id in shared
    ]
    through.objects.bulk_create(links, batch_size=2000)
    readers = sorted(set(named_users))
    named = TaxiiObject.named_users.through
    named.objects.bulk_create(
        [named(taxiiobject_id=row.pk, user_id=user_id) for row in rows for user_id in readers],
        batch_size=2000,
    )
    return rows


@transaction.atomic
def place_objects(
    *,
    actor: Actor,
    collection: TaxiiCollection,
    objects: Sequence[Mapping[str, Any]],
    owner: Organisation,
    author: User | None = None,
    default_tlp: TLP = TLP.AMBER,
    shared_with: Iterable[int] = (),
    named_users: Iterable[int] = (),
) -> list[TaxiiObject]:
    """Put objects into a collection on the platform's own authority (an import job, a test): owned by
    `owner`, each at the TLP of its markings or `default_tlp`. Returns the rows added."""
    entries = []
    for position, body in enumerate(objects):
        try:
            entries.append(entry_for(body, default_tlp))
        except ValueError as exc:
            raise InvalidInput(f"objects[{position}]: {exc}") from None
    rows = _store(
        collection,
        entries,
        owner_id=owner.pk,
        created_by_id=author.pk if author is not None else None,
        shared_with=shared_with,
        named_users=named_users,
    )
    audit.record(
        actor=actor,
        action="taxii.objects.place",
        target=collection,
        organisation_id=owner.pk,
        data={"objects": len(entries), "added": len(rows)},
    )
    return rows


def _report_collections(report: IntelReport, actor: Actor) -> list[TaxiiCollection]:
    audience = report.audience
    if audience == "community":
        return [_collection_for(Audience.COMMUNITY, "", actor)]
    if audience == "sectors":
        return [_collection_for(Audience.SECTOR, name, actor) for name in report.sectors]
    if audience == "provinces":
        return [_collection_for(Audience.PROVINCE, name, actor) for name in report.provinces]
    if audience == "organisations":
        return [organisation_collection(org, actor=actor) for org in report.shared_with.order_by("slug")]
    return []  # "owner": not shared with anyone yet


def _collection_for(audience: Audience, target: str, actor: Actor) -> TaxiiCollection:
    with transaction.atomic():
        audit.lock_chain()
        collection, _ = _get_or_create(audience, target, actor)
    return collection


@transaction.atomic
def place_report_objects(
    *, report: IntelReport, objects: Sequence[Mapping[str, Any]], actor: User
) -> dict[TaxiiCollection, int]:
    """Put a published report's STIX objects into the collection(s) of its audience, each at the TLP
    of its own markings (else the report's), owned by the report's owner and shared as the report was.
    Returns how many objects each collection received."""
    collections = _report_collections(report, SYSTEM)
    if not collections:
        return {}
    entries = []
    for body in objects:
        try:
            entries.append(entry_for(body, TLP(report.tlp)))
        except ValueError as exc:
            # The intel app made these objects; one it cannot describe is a bug there, not a user error.
            raise RuntimeError(f"report {report.pk}: {exc}") from None
    shared = list(report.shared_with.values_list("pk", flat=True))
    placed: dict[TaxiiCollection, int] = {}
    for collection in collections:
        rows = _store(
            collection,
            entries,
            owner_id=report.owner_id,
            created_by_id=report.created_by_id,
            shared_with=shared,
        )
        placed[collection] = len(rows)
        audit.record(
            actor=actor,
            action="taxii.objects.place",
            target=collection,
            organisation_id=report.owner_id,
            data={"report": str(report.stix_id), "objects": len(entries), "added": len(rows)},
        )
    return placed


# --- a client adds objects ---------------------------------------------------------------------------


def _validate_envelope(envelope: Any) -> list[dict[str, Any]]:
    if not isinstance(envelope, dict):
        raise InvalidInput("the request body must be a TAXII envelope: a JSON object with 'objects'")
    objects = envelope.get("objects")
    if not isinstance(objects, list) or not objects:
        raise InvalidInput("the envelope's 'objects' must be a list of one or more STIX objects")
    for position, body in enumerate(objects):
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("id"), str)
            or not isinstance(body.get("type"), str)
        ):
            raise InvalidInput(
                f"objects[{position}] is not a STIX object (a JSON object with a type and an id)"
            )
    return objects


def _writer_organisation(access: selectors.CollectionAccess, requested: str | None) -> Organisation:
    choices = selectors.organisations_by_id(access.writer_org_ids)
    if requested:
        chosen = next((org for org in choices.values() if org.slug == requested), None)
        if chosen is None:
            raise InvalidInput(
                f"you may not add objects to this collection for {requested!r}; you may for: "
                + ", ".join(sorted(org.slug for org in choices.values()))
            )
        return chosen
    if len(choices) > 1:
        raise InvalidInput(
            "you add objects for one of several organisations here ("
            + ", ".join(sorted(org.slug for org in choices.values()))
            + "); name it in the X-Certnet-Organisation header"
        )
    return next(iter(choices.values()))


def _version_of(body: Mapping[str, Any]) -> str:
    version = body.get("modified") or body.get("created") or ""
    return version if isinstance(version, str) else ""


def _import(
    actor: User, organisation: Organisation, objects: Sequence[Mapping[str, Any]]
) -> dict[int, list[str]]:
    """Hand the objects to the intel app's STIX import; returns the refused ones' reasons by position."""
    if not objects:
        return {}
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}
    outcome = import_bundle(actor=actor, owner=organisation.slug, source=bundle, partial=True)
    return {item.index: list(item.reasons) or ["refused"] for item in outcome.refused}


@transaction.atomic
def add_objects(
    *, actor: User, collection_id: str, envelope: Any, organisation: str | None = None
) -> dict[str, Any]:
    """Import an envelope's objects for the caller's organisation and add those taken to the
    collection. Returns the TAXII status resource, also stored for GET status."""
    access = selectors.collection_access(actor, collection_id)
    if access is None:
        raise NotFound(f"no collection {collection_id}")
    if not access.can_write:
        raise Forbidden("you may not add objects to this collection")
    objects = _validate_envelope(envelope)
    writer = _writer_organisation(access, organisation)
    requested_at = clock.now()
    collection = access.collection
    # What the collection cannot hold is refused before the import, so nothing is imported that the
    # collection then lacks.
    refused: dict[int, list[str]] = {}
    placeable: list[tuple[int, Entry]] = []
    for position, body in enumerate(objects):
        try:
            placeable.append((position, entry_for(body, TLP.AMBER)))
        except ValueError as exc:
            refused[position] = [str(exc)]
    by_import = _import(actor, writer, [entry.body for _, entry in placeable])
    entries: list[Entry] = []
    for index, (position, entry) in enumerate(placeable):
        if index in by_import:
            refused[position] = by_import[index]
        else:
            entries.append(entry)
    shared = (
        selectors.audience_organisations(collection)
        if collection.audience != Audience.COMMUNITY
        else frozenset()
    )
    rows = _store(collection, entries, owner_id=writer.pk, created_by_id=actor.pk, shared_with=shared)
    stored_versions = {row.stix_id: row.version for row in rows}
    successes = [
        {
            "id": entry.stix_id,
            "version": entry.version or stored_versions.get(entry.stix_id, ""),
            "message": "added",
        }
        for entry in entries
    ]
    failures = [
        {
            "id": objects[position]["id"],
            "version": _version_of(objects[position]),
            "message": "; ".join(reasons),
        }
        for position, reasons in sorted(refused.items())
    ]
    status = TaxiiStatus(
        collection=collection, user=actor, organisation=writer, request_timestamp=requested_at, resource={}
    )
    resource: dict[str, Any] = {
        "id": str(status.id),
        "status": "complete",
        "request_timestamp": selectors.format_timestamp(requested_at),
        "total_count": len(objects),
        "success_count": len(successes),
        "failure_count": len(failures),
        "pending_count": 0,
    }
    # TAXII lists hold one or more items: an empty one is left out.
    if successes:
        resource["successes"] = successes
    if failures:
        resource["failures"] = failures
    status.resource = resource
    status.save()
    audit.record(
        actor=actor,
        action="taxii.objects.add",
        target=collection,
        organisation_id=writer.pk,
        data={
            "collection": str(collection.pk),
            "title": collection.title,
            "organisation": writer.slug,
            "status": str(status.id),
            "total": len(objects),
            "successes": len(successes),
            "failures": len(failures),
            "stored": len(rows),
        },
    )
    return resource
