"""What the TAXII server does when other apps announce something."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from certnet.taxii import services

if TYPE_CHECKING:
    from certnet.accounts.models import User
    from certnet.intel.models import IntelReport


def place_published_report(
    sender: Any, *, report: IntelReport, objects: Sequence[Mapping[str, Any]], actor: User, **kwargs: Any
) -> None:
    """A published report's objects go into its audience's collections, in the publishing transaction:
    if placing them fails, the report is not published either, so the two never disagree."""
    services.place_report_objects(report=report, objects=objects, actor=actor)
