"""New reports are announced to their handling CERT in batches: one job a window for every report
waiting (shared by all web workers through the job queue's store), the mail of one job sent as one
message per person, a digest when it holds several notifications, and a report whose job was lost
announced by the next job."""

from __future__ import annotations

from typing import Any

import pytest
from huey.contrib.djhuey import HUEY

from certnet.incidents import jobs
from certnet.incidents.models import Report
from certnet.incidents.services.announcements import announce_pending_reports
from certnet.notifications.mail import send_notification_mail
from certnet.notifications.models import Notification
from certnet.notifications.tests.smtp import local_relay, use_smtp
from certnet.notifications.tests.world import World, address, build_world


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


@pytest.fixture
def batched(settings: Any) -> Any:
    """Announcements batched over 30 s; the jobs queue in Huey's in-memory test store without running."""
    settings.CERTNET_ANNOUNCE_BATCH_SECONDS = 30
    HUEY.storage.flush_all()
    jobs.queue = jobs.AnnouncementQueue()
    yield
    HUEY.storage.flush_all()
    jobs.queue = jobs.AnnouncementQueue()


def new_report_notices() -> list[tuple[str, str]]:
    rows = Notification.objects.filter(kind="new-report").values_list("recipient__username", "subject")
    return sorted(rows)


@pytest.mark.django_db
@pytest.mark.usefixtures("batched")
def test_reports_filed_while_a_job_waits_share_it_and_are_announced_together(
    world: World, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = world.report(title="Ransomware on the billing servers")
    assert HUEY.scheduled_count() == 1
    # Another web worker (a fresh queue object) finds the job waiting and queues none of its own.
    jobs.queue = jobs.AnnouncementQueue()
    with django_capture_on_commit_callbacks(execute=True):
        second = world.report(title="Phishing wave against the accounts office")
    assert HUEY.scheduled_count() == 1
    assert Notification.objects.count() == 0
    assert Report.objects.filter(announced_at__isnull=True).count() == 2

    with local_relay() as relay:
        use_smtp(settings, relay.port)
        # The job runs: it takes both reports, and its mail job sends each person one digest.
        assert jobs.announce_new_reports.call_local() == 4
        assert Report.objects.filter(announced_at__isnull=True).count() == 0
        told = new_report_notices()
        assert [who for who, _ in told] == ["punjab.handler"] * 2 + ["punjab.manager"] * 2
        assert {subject.split(" ")[0] for _, subject in told} == {f"R-{first.pk}", f"R-{second.pk}"}
        ids = list(Notification.objects.values_list("pk", flat=True))
        assert send_notification_mail.call_local(ids) == 4
        assert sorted(r for m in relay.received for r in m.rcpt_tos) == [
            address("punjab.handler"),
            address("punjab.manager"),
        ]
        digest = relay.to(address("punjab.manager"))[0]
        assert digest.subject.startswith(f"[certnet] 2 notifications: R-{first.pk} reported by")
        body = digest.body
        assert "Title: Ransomware on the billing servers" in body
        assert "Title: Phishing wave against the accounts office" in body
        assert f"/incidents/reports/{first.pk}/" in body
        assert f"/incidents/reports/{second.pk}/" in body
    assert all(n.emailed_at is not None for n in Notification.objects.all())

    # The job cleared its mark as it started: a report after that (here at another worker, the first
    # one's window having been cut short by running the job early) queues a job of its own.
    jobs.queue = jobs.AnnouncementQueue()
    with django_capture_on_commit_callbacks(execute=True):
        world.report()
    assert HUEY.scheduled_count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("batched")
def test_a_report_whose_job_was_lost_is_announced_by_the_next_run_and_never_twice(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        lost = world.report()
    HUEY.storage.flush_all()  # the queue lost the job, and its mark with it
    assert announce_pending_reports() == 2  # the minute's sweep, say
    assert announce_pending_reports() == 0
    assert [who for who, _ in new_report_notices()] == ["punjab.handler", "punjab.manager"]
    assert Report.objects.get(pk=lost.pk).announced_at is not None


@pytest.mark.django_db
@pytest.mark.usefixtures("batched")
def test_a_mark_left_by_a_lost_job_long_ago_does_not_stop_new_jobs(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    HUEY.storage.put_data(jobs.PENDING_KEY, repr(1.0).encode())  # a start time in 1970
    with django_capture_on_commit_callbacks(execute=True):
        world.report()
    assert HUEY.scheduled_count() == 1


@pytest.mark.django_db
def test_the_reporter_is_not_told_of_their_own_report_and_a_red_report_only_its_named_readers(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        world.report(reporter="lahore.analyst")
        red = world.report(tlp="red", named_users=["punjab.handler"], title="Insider copying case files")
    lahore = world.orgs["lahore"].display_name
    told = new_report_notices()
    red_notices = [(who, subject) for who, subject in told if subject.startswith(f"R-{red.pk} ")]
    # Only the named handler, and no title: a RED title stays off e-mail.
    assert red_notices == [("punjab.handler", f"R-{red.pk} reported by {lahore} for Punjab CERT to triage")]
    assert sorted(who for who, _ in told) == ["punjab.handler", "punjab.handler", "punjab.manager"]
