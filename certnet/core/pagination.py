"""Pagination that shapes only the rows of one page, in one batch, and counts only so far.

An exact count of what a user may see is a scan of everything they may see: at a million incidents
that is most of a second, on every page. Counts therefore stop at COUNT_CAP; a count of COUNT_CAP + 1
means "more than COUNT_CAP" (docs/api.md). Below the cap every count is exact."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any, cast

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
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

    def validate_number(self, number: Any) -> int:
        if not self.capped:
            return int(super().validate_number(number))
        # Past the cap the last page is unknown, so any page from 1 on may be asked for; `page`
        # finds out whether it has rows.
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            valid = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if valid < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return valid

    def get_page(self, number: Any) -> Page:  # type: ignore[type-arg]
        """As Django's: a page number past the end gives a page that exists (past the cap, the last
        one the count reached), and nonsense gives the first."""
        try:
            return self.page(number)
        except PageNotAnInteger:
            return self.page(1)
        except EmptyPage:
            return self.page(self.num_pages)

    def page(self, number: Any) -> Page:  # type: ignore[type-arg]
        if not self.capped:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage(self.error_messages["no_results"])
        return BeyondCapPage(rows[: self.per_page], number, self, more=len(rows) > self.per_page)


class BeyondCapPage(Page):  # type: ignore[type-arg]
    """A page of a list longer than the cap: whether a next page exists is known from one row read
    past this page, not from the count."""

    def __init__(self, rows: list[Any], number: int, paginator: CappedPaginator, *, more: bool) -> None:
        super().__init__(rows, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more

    def end_index(self) -> int:
        return (self.number - 1) * self.paginator.per_page + len(self.object_list)
