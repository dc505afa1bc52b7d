"""What the intel app tells the rest of the platform, without knowing who listens (the TAXII server
puts a published report's objects into the collection for its audience)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the publishing transaction, after the report, its indicators' sharing and the audit
# entry are written. Arguments: report (IntelReport), objects (the report's STIX 2.1 objects as
# dicts: the report, its indicators, identities, marking definitions, kept objects), actor (User).
report_published = Signal()
