"""Counts stop at the cap: exact below it, cap + 1 ("more than") above it, for the API and the pages."""

from __future__ import annotations

import pytest

from certnet.core import pagination
from certnet.core.pagination import CappedPaginator, ShapedPage
from certnet.core.tests.probe.models import ProbeRecord
from certnet.core.tlp import TLP
from certnet.registry.models import Organisation


@pytest.fixture
def five_records(db):
    owner = Organisation.objects.create(slug="owner", name="Owner", kind="constituent")
    ProbeRecord.objects.bulk_create(ProbeRecord(title=f"r{i}", owner=owner, tlp=TLP.GREEN) for i in range(5))
    return ProbeRecord.objects.order_by("id")


def test_counts_are_exact_up_to_the_cap_and_say_more_than_beyond_it(five_records, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 5)
    assert ShapedPage(five_records, lambda rows: []).count() == 5
    assert not CappedPaginator(five_records, 2).capped
    monkeypatch.setattr(pagination, "COUNT_CAP", 3)
    assert ShapedPage(five_records, lambda rows: []).count() == 4
    paginator = CappedPaginator(five_records, 2)
    assert (paginator.count, paginator.capped, paginator.cap, paginator.num_pages) == (4, True, 3, 2)


def test_a_page_is_shaped_in_one_batch(five_records):
    batches = []

    def shape(rows):
        batches.append(len(rows))
        return [{"title": row.title} for row in rows]

    assert ShapedPage(five_records, shape)[1:3] == [{"title": "r1"}, {"title": "r2"}]
    assert batches == [2]


def test_pages_past_the_cap_stay_reachable(five_records, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_CAP", 1)
    paginator = CappedPaginator(five_records, 2)
    assert paginator.capped
    pages = [paginator.page(n) for n in (1, 2, 3)]
    assert [[r.title for r in page] for page in pages] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert [(p.has_previous(), p.has_next()) for p in pages] == [(False, True), (True, True), (True, False)]
    assert [(p.start_index(), p.end_index()) for p in pages] == [(1, 2), (3, 4), (5, 5)]
    # Beyond the end, and nonsense, land where Django's get_page puts them: a real page.
    assert [r.title for r in paginator.get_page("abc")] == ["r0", "r1"]
    assert paginator.get_page(9).number == paginator.num_pages
    with pytest.raises(pagination.EmptyPage):
        paginator.page(9)
