"""Pagination that shapes only the rows of one page, in one batch, and counts only so far.

An exact count of what a user may see is a scan of everything they may see: at a million incidents
that is most of a second, on every page. Counts therefore stop at COUNT_CAP; a count of COUNT_CAP + 1
means "more than COUNT_CAP" (docs/api.md). Below the cap every count is exact."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, cast

from django.core.paginator import Paginator
from django.db.models import QuerySet

COUNT_CAP = 10_000


def capped_count(queryset: QuerySet[Any]) -> int:
    """The exact count up to COUNT_CAP, else COUNT_CAP + 1."""
    return queryset.order_by()[: COUNT_CAP + 1].count()


class ShapedPage:
    """What ninja's pagination slices: the database returns one page, which `shape` then turns into
    response rows with a fixed number of extra queries, however long the page."""

    def __init__(self, queryset: QuerySet[Any], shape: Callable[[list[Any]], list[dict[str, Any]]]) -> None:
        self.queryset = queryset
        self.shape = shape

    def __len__(self) -> int:
        return capped_count(self.queryset)

    def count(self) -> int:
        return len(self)

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        return self.shape(list(self.queryset[window]))


class CappedPaginator(Paginator):  # type: ignore[type-arg]
    """Django's paginator with the count stopped at COUNT_CAP; templates say "more than" when
    `capped` is true (web/_pager.html)."""

    @property
    def cap(self) -> int:
        return COUNT_CAP

    @cached_property
    def count(self) -> int:
        return capped_count(cast("QuerySet[Any]", self.object_list))

    @property
    def capped(self) -> bool:
        return self.count > COUNT_CAP
