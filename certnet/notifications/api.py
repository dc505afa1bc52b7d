"""The caller's own notifications. Personal records: nobody reads another person's list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.pagination import LimitOffsetPagination, paginate

from certnet.accounts.models import User
from certnet.core.pagination import ShapedPage
from certnet.notifications import selectors, services
from certnet.notifications.models import Notification

router = Router(tags=["notifications"])


class NotificationOut(Schema):
    id: int
    kind: str
    subject: str
    body: str
    link: str
    created_at: dt.datetime
    read_at: dt.datetime | None
    emailed_at: dt.datetime | None


class ReadIn(Schema):
    ids: list[int] | None = None  # none given: all of the caller's unread notifications


class ReadOut(Schema):
    marked: int
    unread: int


def _out(item: Notification) -> dict[str, Any]:
    return {name: getattr(item, name) for name in NotificationOut.model_fields}


@router.get(
    "/notifications",
    response=list[NotificationOut],
    summary="Your notifications, newest first (?unread=true for the unread ones)",
)
@paginate(LimitOffsetPagination)
def list_notifications(request: HttpRequest, unread: bool = False) -> Any:
    user: User = request.user  # type: ignore[assignment]
    queryset = selectors.notifications_for(user, unread_only=unread)
    return ShapedPage(queryset, lambda page: [_out(item) for item in page])


@router.post("/notifications/read", response=ReadOut, summary="Mark your notifications read")
def mark_read(request: HttpRequest, payload: ReadIn) -> dict[str, int]:
    user: User = request.user  # type: ignore[assignment]
    marked = services.mark_read(user, payload.ids)
    return {"marked": marked, "unread": selectors.unread_count(user)}
