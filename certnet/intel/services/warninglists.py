"""Warninglists: loaded from the shipped data files, edited by platform administrators. A change to a
list re-flags the indicators it covers, so the flag on an indicator always says what the lists say."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from certnet.core import audit, clock
from certnet.core.audit import Actor
from certnet.core.errors import FieldError, Forbidden, InvalidInput, NotFound, invalid
from certnet.intel.index import build_matcher, warninglist_revision
from certnet.intel.models import Indicator, Warninglist, WarninglistEntry, WarninglistKind
from certnet.intel.observables import normalise

WARNINGLIST_DIR = Path(__file__).resolve().parent.parent / "data" / "warninglists"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")


def normalise_entry(kind: str, text: str, loc: str) -> str:
    """One entry in its list's canonical form: a network, a domain, or kind:value."""
    raw = str(text).strip()
    if kind in (WarninglistKind.CIDR, WarninglistKind.DOMAIN):
        return normalise(kind, raw, loc=loc)
    value_kind, sep, value = raw.partition(":")
    if not sep:
        raise invalid(loc, f"{raw!r} must be written kind:value, e.g. md5:d41d8cd98f00b204e9800998ecf8427e")
    return f"{value_kind}:{normalise(value_kind, value, loc=loc)}"


@dataclass(frozen=True)
class LoadSummary:
    lists: int
    entries_added: int
    entries_removed: int


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path.name}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name}: expected a mapping with slug, name, kind and entries")
    errors: list[FieldError] = []
    slug = str(data.get("slug", ""))
    if not _SLUG.match(slug) or slug != path.stem:
        errors.append(
            FieldError(f"{path.name}: slug", f"{slug!r} must be lower-case and match the file name")
        )
    if data.get("kind") not in WarninglistKind.values:
        errors.append(
            FieldError(f"{path.name}: kind", f"{data.get('kind')!r} is not one of cidr, domain, value")
        )
    entries = data.get("entries")
    if not isinstance(entries, list):
        entries = []
    if not entries:
        errors.append(FieldError(f"{path.name}: entries", "must be a non-empty list"))
    if errors:
        raise InvalidInput("; ".join(str(e) for e in errors), errors=errors)
    normalised: list[str] = []
    for number, entry in enumerate(entries):
        try:
            normalised.append(normalise_entry(data["kind"], entry, f"{path.name}: entries[{number}]"))
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidInput("; ".join(str(e) for e in errors), errors=errors)
    return {**data, "entries": list(dict.fromkeys(normalised))}


@transaction.atomic
def load_warninglists(directory: Path = WARNINGLIST_DIR, *, actor: Actor) -> LoadSummary:
    """Bring the lists in line with the data files: new lists and entries are added, entries no longer
    in a file are removed. Lists that exist only in the database (made by an administrator) are left
    alone; so is a shipped list an administrator disabled (its entries still follow the file)."""
    files = sorted(directory.glob("*.yaml"))
    parsed = [_read(path) for path in files]  # every file checked before anything is written
    added = removed = 0
    for data in parsed:
        warninglist, _ = Warninglist.objects.update_or_create(
            slug=data["slug"],
            defaults={
                "name": str(data.get("name", data["slug"]))[:200],
                "description": str(data.get("description", "")),
                "kind": data["kind"],
                "source": str(data.get("source", ""))[:300],
                "updated_at": clock.now(),
            },
        )
        plus, minus = _set_entries(warninglist, data["entries"])
        added += plus
        removed += minus
        if plus or minus:
            audit.record(
                actor=actor,
                action="intel.warninglist.load",
                target=warninglist,
                data={"added": plus, "removed": minus, "file": f"{data['slug']}.yaml"},
            )
    if added or removed:
        reflag_indicators()
    return LoadSummary(lists=len(parsed), entries_added=added, entries_removed=removed)


def _set_entries(warninglist: Warninglist, entries: Sequence[str]) -> tuple[int, int]:
    current = set(warninglist.entries.values_list("value", flat=True))
    wanted = set(entries)
    WarninglistEntry.objects.bulk_create(
        [WarninglistEntry(warninglist=warninglist, value=value) for value in entries if value not in current]
    )
    stale = current - wanted
    if stale:
        warninglist.entries.filter(value__in=stale).delete()
    return len(wanted - current), len(stale)


def _require_platform_admin(actor: Any) -> None:
    if not getattr(actor, "is_platform_admin", False):
        raise Forbidden("warninglists are edited by platform administrators")


@transaction.atomic
def edit_warninglist(
    *, actor: Any, slug: str, add: Iterable[str] = (), remove: Iterable[str] = (), enabled: bool | None = None
) -> Warninglist:
    """Add or remove entries, or switch a list on or off; indicators are re-flagged to match."""
    _require_platform_admin(actor)
    warninglist = Warninglist.objects.select_for_update().filter(slug=slug).first()
    if warninglist is None:
        raise NotFound(f"no warninglist {slug!r}")
    errors: list[FieldError] = []
    to_add: list[str] = []
    for number, text in enumerate(add):
        try:
            to_add.append(normalise_entry(warninglist.kind, text, f"add[{number}]"))
        except InvalidInput as exc:
            errors.extend(exc.errors)
    to_remove: list[str] = []
    for number, text in enumerate(remove):
        try:
            to_remove.append(normalise_entry(warninglist.kind, text, f"remove[{number}]"))
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidInput("nothing changed: " + "; ".join(str(e) for e in errors), errors=errors)
    current = set(warninglist.entries.values_list("value", flat=True))
    absent = [value for value in to_remove if value not in current]
    if absent:
        raise invalid("remove", f"{absent[0]!r} is not on {slug}")
    new = [value for value in dict.fromkeys(to_add) if value not in current]
    WarninglistEntry.objects.bulk_create([WarninglistEntry(warninglist=warninglist, value=v) for v in new])
    warninglist.entries.filter(value__in=to_remove).delete()
    if enabled is not None:
        warninglist.enabled = enabled
    warninglist.updated_at = clock.now()
    warninglist.save()
    audit.record(
        actor=actor,
        action="intel.warninglist.edit",
        target=warninglist,
        data={"added": new, "removed": sorted(set(to_remove)), "enabled": warninglist.enabled},
    )
    reflag_indicators()
    return warninglist


def reflag_indicators(batch: int = 5000) -> int:
    """Set every indicator's warninglist flag from the lists as they are now; returns how many changed.
    Walks the indicators by key in batches and writes only those whose flag moved."""
    matcher = build_matcher(warninglist_revision())
    changed = 0
    last = 0
    while True:
        rows = list(
            Indicator.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "kind", "value", "warninglist")[:batch]
        )
        if not rows:
            return changed
        last = rows[-1][0]
        moved: dict[str, list[int]] = {}
        for pk, kind, value, flag in rows:
            now_listed = matcher.listed(kind, value) or ""
            if now_listed != flag:
                moved.setdefault(now_listed, []).append(pk)
        for flag, ids in moved.items():
            Indicator.objects.filter(pk__in=ids).update(warninglist=flag)
            changed += len(ids)
