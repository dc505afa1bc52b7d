"""Evidence: receipt with its hash, and the chain of custody. Who may touch a file is decided by the
record it belongs to (incident, else report, else intake message), through certnet.core.visibility."""

from __future__ import annotations

from typing import IO

from django.db import transaction

from certnet.accounts.models import User
from certnet.core import audit, clock
from certnet.core.audit import Actor
from certnet.incidents import storage
from certnet.incidents.models import CustodyEntry, Evidence, InboundMail, Incident, Report
from certnet.incidents.models_handling import CustodyAction, EvidenceSource

MAX_FILENAME = 255


def clean_filename(name: str) -> str:
    """Keep the sender's name for the record, without paths or control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return (base or "unnamed")[:MAX_FILENAME]


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


def receive_evidence(
    *,
    actor: Actor,
    content: bytes | IO[bytes],
    filename: str,
    content_type: str,
    source: EvidenceSource,
    incident: Incident | None = None,
    report: Report | None = None,
    inbound_mail: InboundMail | None = None,
    description: str = "",
) -> Evidence:
    """Store the bytes (hashed, size-limited: TooLarge names the file and the limit) and record them
    with a 'received' custody entry. The caller has already checked the actor's right to add evidence
    to the parent record; this runs inside the caller's transaction."""
    if incident is None and report is None and inbound_mail is None:
        raise ValueError("evidence must belong to an incident, a report or an intake message")
    name = clean_filename(filename)
    stored = storage.store(content, what=f"the file {name!r}")
    user = actor if isinstance(actor, User) else None
    with transaction.atomic():
        evidence = Evidence.objects.create(
            incident=incident,
            report=report,
            inbound_mail=inbound_mail,
            filename=name,
            content_type=(content_type or "application/octet-stream")[:120],
            size=stored.size,
            sha256=stored.sha256,
            storage_key=stored.key,
            source=source,
            description=description[:300],
            received_at=clock.now(),
            received_by=user,
        )
        custody(evidence, actor, CustodyAction.RECEIVED, f"{stored.size} bytes, sha256 {stored.sha256}")
    return evidence
