"""The two trails an incident keeps: its timeline (everything that happened to it, for whoever may see
it) and the chain of custody of its evidence (every receipt, access and export of each file)."""

from __future__ import annotations

from typing import Any

from certnet.core import audit, clock
from certnet.core.audit import Actor
from certnet.incidents.models import CustodyEntry, Evidence, Incident, TimelineEvent


def timeline_event(incident: Incident, actor: Actor, kind: str, summary: str, **data: Any) -> None:
    TimelineEvent.objects.create(
        incident=incident,
        at=clock.now(),
        actor_label=actor.get_username(),
        kind=kind,
        summary=summary[:300],
        data=audit.without_floats(data) if data else {},
    )


def custody(evidence: Evidence, actor: Actor, action: str, detail: str = "") -> CustodyEntry:
    """One custody entry, also in the audit log so the chain of custody is itself tamper-evident."""
    entry = CustodyEntry.objects.create(
        evidence=evidence,
        at=clock.now(),
        actor_label=actor.get_username(),
        action=action,
        detail=detail[:300],
    )
    audit.record(
        actor=actor,
        action=f"incidents.evidence.{action}",
        target=evidence,
        data={"sha256": evidence.sha256, "detail": entry.detail},
    )
    return entry
