"""Pagination that shapes only the rows of one page, in one batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet


class ShapedPage:
    """What ninja's pagination slices: the database returns one page, which `shape` then turns into
    response rows with a fixed number of extra queries, however long the page."""

    def __init__(self, queryset: QuerySet[Any], shape: Callable[[list[Any]], list[dict[str, Any]]]) -> None:
        self.queryset = queryset
        self.shape = shape

    def __len__(self) -> int:
        return self.queryset.count()

    def count(self) -> int:
        return len(self)

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        return self.shape(list(self.queryset[window]))
