"""Reporting clocks: the shipped profiles, deadline arithmetic, states, validation of the profiles file."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certnet.core.errors import InvalidInput
from certnet.incidents.clocks import (
    DEFAULT_PATH,
    SERVICE_LEVELS,
    Cap,
    Profile,
    ProfileSet,
    StageSpec,
    StageState,
    add_months,
    evaluate,
    load_profiles,
    next_deadline,
    parse_profiles,
)

PKT = ZoneInfo("Asia/Karachi")
BERLIN = ZoneInfo("Europe/Berlin")
AWARE = datetime(2025, 3, 10, 9, 30, tzinfo=PKT)

PROFILES = load_profiles()
PK = PROFILES.get("pk-provisional")


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def by_slug(states: list[StageState]) -> dict[str, StageState]:
    return {state.slug: state for state in states}


def small_file(**overrides: str) -> str:
    """A valid two-profile file; keyword arguments replace its sections (YAML text, already indented)."""
    sections = {
        "profiles": """
          - slug: home
            name: Home
            provisional: true
            source: test
            stages:
              - {slug: first, name: First, after: awareness, hours: 24}
              - {slug: second, name: Second, after: first, days: 3}
          - slug: abroad
            name: Abroad
            provisional: false
            source: test
            stages:
              - {slug: only, name: Only, after: awareness, hours: 6}
          - slug: banking
            name: Banking
            provisional: false
            source: test
            stages:
              - {slug: only, name: Only, after: awareness, hours: 4}
        """,
        "assignments": """
          default: home
          by_kind: {cii-operator: abroad, regulator: banking}
          by_sector: {banking: banking}
        """,
        "service_levels": """
          - {slug: acknowledge, name: Acknowledge, after: received, hours: 4}
        """,
    }
    sections.update(overrides)
    text = 'version: "1"\n'
    for key, body in sections.items():
        text += f"{key}:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n"
    return text


def errors_of(text: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_profiles(text)
    return {error.loc: error.msg for error in caught.value.errors}


# --- the shipped file -----------------------------------------------------------------------------------


def test_the_shipped_file_loads():
    assert set(PROFILES.profiles) == {
        "pk-provisional",
        "eu-nis2",
        "in-certin",
        "sg-cii",
        "us-circia",
        "eu-dora",
    }
    assert PROFILES.default == "pk-provisional"
    assert PK.provisional
    assert PK.source
    assert not any(p.provisional for slug, p in PROFILES.profiles.items() if slug != "pk-provisional")
    assert [s.slug for s in PK.stages] == ["early-warning", "notification", "final-report"]
    assert [s.describe() for s in PK.stages] == [
        "24 h after awareness",
        "72 h after awareness",
        "1 month after notification",
    ]
    assert PROFILES.profile_for() is PK
    assert [s.slug for s in PROFILES.service_levels.stages] == ["acknowledge", "first-response"]
    assert PROFILES.service_levels.slug == SERVICE_LEVELS
    assert PROFILES.get(SERVICE_LEVELS) is PROFILES.service_levels


def test_the_default_file_is_cached_and_a_path_can_be_given(tmp_path):
    assert load_profiles() is PROFILES
    copy = tmp_path / "profiles.yaml"
    copy.write_text(DEFAULT_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    loaded = load_profiles(copy)
    assert loaded is not PROFILES
    assert loaded.profiles == PROFILES.profiles


def test_an_unreadable_path_is_invalid_input(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read"):
        load_profiles(tmp_path / "missing.yaml")


def test_the_shipped_foreign_profiles():
    nis2 = PROFILES.get("eu-nis2")
    assert [(s.slug, s.optional) for s in nis2.stages] == [
        ("early-warning", False),
        ("notification", False),
        ("intermediate-report", True),
        ("final-report", False),
    ]
    assert any("trust service" in note.lower() for note in nis2.notes)
    assert PROFILES.get("in-certin").stages[0].hours == 6
    sg = PROFILES.get("sg-cii")
    assert [(s.hours, s.days) for s in sg.stages] == [(2, 0), (0, 14)]
    assert PROFILES.get("us-circia").stages[0].hours == 72
    dora = PROFILES.get("eu-dora").stages[0]
    assert (dora.anchor, dora.hours, dora.latest) == ("classification", 4, Cap("awareness", hours=24))


def test_get_names_the_unknown_slug():
    with pytest.raises(InvalidInput, match="'nowhere'") as caught:
        PROFILES.get("nowhere")
    assert caught.value.errors[0].loc == "profile"


# --- deadlines ------------------------------------------------------------------------------------------


def test_early_warning_is_due_exactly_24_hours_after_awareness():
    states = by_slug(evaluate(PK, events={"awareness": AWARE}, met={}, now=AWARE))
    early = states["early-warning"]
    assert early.due_at == AWARE + timedelta(hours=24)
    assert early.due_at is not None
    assert early.due_at.tzinfo is PKT
    assert (early.state, early.met_at, early.overdue_by) == ("due", None, None)
    assert states["notification"].due_at == AWARE + timedelta(hours=72)


def test_final_report_runs_from_the_notification_as_submitted_or_else_as_due():
    not_met = by_slug(evaluate(PK, events={"awareness": AWARE}, met={}, now=AWARE))
    # Due 2025-03-13 09:30; one calendar month later.
    assert not_met["final-report"].due_at == datetime(2025, 4, 13, 9, 30, tzinfo=PKT)

    submitted = datetime(2025, 3, 11, 17, 5, tzinfo=PKT)
    met = by_slug(evaluate(PK, events={"awareness": AWARE}, met={"notification": submitted}, now=submitted))
    assert met["notification"].state == "met"
    assert met["final-report"].due_at == datetime(2025, 4, 11, 17, 5, tzinfo=PKT)


def test_a_final_report_from_a_notification_on_the_31st_is_clamped():
    aware = datetime(2024, 12, 29, 10, 0, tzinfo=UTC)  # notification due 2025-01-01 10:00
    submitted = datetime(2025, 1, 31, 8, 0, tzinfo=UTC)
    final = by_slug(evaluate(PK, events={"awareness": aware}, met={"notification": submitted}, now=submitted))
    assert final["final-report"].due_at == datetime(2025, 2, 28, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2025, 1, 31, 12, tzinfo=UTC), 1, datetime(2025, 2, 28, 12, tzinfo=UTC)),
        (datetime(2024, 1, 31, 12, tzinfo=UTC), 1, datetime(2024, 2, 29, 12, tzinfo=UTC)),
        (datetime(2025, 3, 31, 23, 59, tzinfo=PKT), 1, datetime(2025, 4, 30, 23, 59, tzinfo=PKT)),
        (datetime(2025, 12, 15, 8, tzinfo=PKT), 1, datetime(2026, 1, 15, 8, tzinfo=PKT)),
        (datetime(2025, 11, 30, 8, tzinfo=UTC), 3, datetime(2026, 2, 28, 8, tzinfo=UTC)),
        (datetime(2025, 3, 31, 8, tzinfo=UTC), -1, datetime(2025, 2, 28, 8, tzinfo=UTC)),
        (datetime(2025, 5, 15, 8, tzinfo=UTC), 0, datetime(2025, 5, 15, 8, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_the_day_and_keeps_the_timezone(start, months, expected):
    result = add_months(start, months)
    assert result == expected
    assert result.tzinfo is start.tzinfo


def test_hours_are_elapsed_time_across_daylight_saving():
    profile = Profile(
        "t",
        "T",
        False,
        "test",
        (StageSpec("s", "S", "awareness", hours=24), StageSpec("m", "M", "s", months=1)),
    )
    aware = datetime(2025, 3, 29, 12, 0, tzinfo=BERLIN)  # CET; the clocks go forward that night
    states = by_slug(evaluate(profile, events={"awareness": aware}, met={}, now=aware))
    due = states["s"].due_at
    assert due is not None
    assert due.astimezone(UTC) - aware.astimezone(UTC) == timedelta(hours=24)  # 24 h have passed...
    assert due - aware == timedelta(hours=25)  # ...though Python subtracts wall clocks in one zone
    assert due == datetime(2025, 3, 30, 13, 0, tzinfo=BERLIN)
    assert states["m"].due_at == datetime(2025, 4, 30, 13, 0, tzinfo=BERLIN)  # months: the wall clock


# --- states ---------------------------------------------------------------------------------------------


def test_met_and_met_late():
    due = AWARE + timedelta(hours=24)
    on_time = by_slug(evaluate(PK, events={"awareness": AWARE}, met={"early-warning": due}, now=due))
    assert (on_time["early-warning"].state, on_time["early-warning"].overdue_by) == ("met", None)
    assert on_time["early-warning"].met_at == due

    late_at = due + timedelta(minutes=90)
    late = by_slug(evaluate(PK, events={"awareness": AWARE}, met={"early-warning": late_at}, now=late_at))
    assert late["early-warning"].state == "met-late"
    assert late["early-warning"].overdue_by == timedelta(minutes=90)


def test_overdue_with_overdue_by():
    now = AWARE + timedelta(hours=30)
    states = by_slug(evaluate(PK, events={"awareness": AWARE}, met={}, now=now))
    assert states["early-warning"].state == "overdue"
    assert states["early-warning"].overdue_by == timedelta(hours=6)
    assert (states["notification"].state, states["notification"].overdue_by) == ("due", None)
    # Exactly at the deadline it is still due.
    at_deadline = by_slug(evaluate(PK, events={"awareness": AWARE}, met={}, now=AWARE + timedelta(hours=24)))
    assert at_deadline["early-warning"].state == "due"


def test_overdue_by_is_elapsed_time_whatever_the_timezones():
    now = (AWARE + timedelta(hours=25)).astimezone(ZoneInfo("America/New_York"))
    states = by_slug(evaluate(PK, events={"awareness": AWARE}, met={}, now=now))
    assert states["early-warning"].overdue_by == timedelta(hours=1)


def test_a_missing_anchor_event_leaves_the_stage_without_a_due_time():
    dora = PROFILES.get("eu-dora")
    now = AWARE + timedelta(days=3)
    states = by_slug(evaluate(dora, events={"awareness": AWARE}, met={}, now=now))
    assert [states[s].due_at for s in ("initial-notification", "intermediate-report", "final-report")] == [
        None,
        None,
        None,
    ]
    assert {s.state for s in states.values()} == {"due"}
    assert all(s.overdue_by is None for s in states.values())
    # None is read as "not known yet" too.
    assert evaluate(dora, events={"awareness": AWARE, "classification": None}, met={}, now=now) == list(
        states.values()
    )


def test_dora_initial_notification_is_capped_at_24_hours_after_awareness():
    dora = PROFILES.get("eu-dora")
    early = by_slug(
        evaluate(
            dora, events={"awareness": AWARE, "classification": AWARE + timedelta(hours=2)}, met={}, now=AWARE
        )
    )
    assert early["initial-notification"].due_at == AWARE + timedelta(hours=6)
    assert early["intermediate-report"].due_at == AWARE + timedelta(hours=6 + 72)

    late = by_slug(
        evaluate(
            dora,
            events={"awareness": AWARE, "classification": AWARE + timedelta(hours=22)},
            met={},
            now=AWARE,
        )
    )
    assert late["initial-notification"].due_at == AWARE + timedelta(hours=24)


def test_on_request_stages_have_no_deadline():
    nis2 = PROFILES.get("eu-nis2")
    now = AWARE + timedelta(days=60)
    states = by_slug(evaluate(nis2, events={"awareness": AWARE}, met={}, now=now))
    intermediate = states["intermediate-report"]
    assert (intermediate.state, intermediate.due_at, intermediate.overdue_by) == ("on-request", None, None)
    sent = AWARE + timedelta(days=10)
    states = by_slug(evaluate(nis2, events={"awareness": AWARE}, met={"intermediate-report": sent}, now=now))
    assert (states["intermediate-report"].state, states["intermediate-report"].met_at) == ("met", sent)


def test_met_entries_for_other_stages_and_unknown_events_are_ignored():
    states = evaluate(PK, events={"awareness": AWARE, "sunrise": AWARE}, met={"nope": AWARE}, now=AWARE)
    assert states == evaluate(PK, events={"awareness": AWARE}, met={}, now=AWARE)


def test_stages_come_in_profile_order():
    states = evaluate(PK, events={"awareness": AWARE}, met={}, now=AWARE)
    assert [s.slug for s in states] == [s.slug for s in PK.stages]
    assert [s.name for s in states] == ["Early warning", "Incident notification", "Final report"]


@pytest.mark.parametrize(
    ("events", "met", "now", "where"),
    [
        ({"awareness": AWARE}, {}, datetime(2025, 3, 10, 12, 0), "now"),  # noqa: DTZ001 - the point
        ({"awareness": datetime(2025, 3, 10, 12, 0)}, {}, AWARE, "events['awareness']"),  # noqa: DTZ001
        ({"awareness": AWARE}, {"notification": datetime(2025, 3, 11)}, AWARE, "met['notification']"),  # noqa: DTZ001
    ],
)
def test_naive_datetimes_are_refused(events, met, now, where):
    with pytest.raises(ValueError, match=f"{where}.*timezone-aware".replace("[", r"\[")):
        evaluate(PK, events=events, met=met, now=now)


def test_next_deadline_is_the_earliest_unmet_one():
    events = {"awareness": AWARE}
    assert next_deadline(evaluate(PK, events=events, met={}, now=AWARE)).slug == "early-warning"
    overdue = evaluate(PK, events=events, met={}, now=AWARE + timedelta(hours=50))
    assert next_deadline(overdue).slug == "early-warning"
    met_early = evaluate(PK, events=events, met={"early-warning": AWARE + timedelta(hours=1)}, now=AWARE)
    assert next_deadline(met_early).slug == "notification"
    both = {"early-warning": AWARE, "notification": AWARE + timedelta(hours=2)}
    nearly_done = evaluate(PK, events=events, met=both, now=AWARE)
    assert next_deadline(nearly_done).due_at == datetime(2025, 4, 10, 11, 30, tzinfo=PKT)
    done = evaluate(PK, events=events, met={**both, "final-report": AWARE + timedelta(days=3)}, now=AWARE)
    assert next_deadline(done) is None
    assert next_deadline([]) is None
    # Stages without a due time do not count.
    dora = evaluate(PROFILES.get("eu-dora"), events=events, met={}, now=AWARE)
    assert next_deadline(dora) is None


def test_next_deadline_compares_instants_not_wall_clocks():
    a = StageState("a", "A", datetime(2025, 1, 1, 12, tzinfo=PKT), None, "due", None)  # 07:00 UTC
    b = StageState("b", "B", datetime(2025, 1, 1, 8, tzinfo=UTC), None, "due", None)
    assert next_deadline([b, a]) is a


# --- assignments ----------------------------------------------------------------------------------------


def test_sector_beats_kind_beats_default():
    profiles = parse_profiles(small_file())
    assert profiles.profile_for().slug == "home"
    assert profiles.profile_for(kind="ministry").slug == "home"
    assert profiles.profile_for(kind="cii-operator").slug == "abroad"
    assert profiles.profile_for(sector="banking").slug == "banking"
    assert profiles.profile_for(kind="cii-operator", sector="banking").slug == "banking"
    assert profiles.profile_for(kind="cii-operator", sector="telecom").slug == "abroad"
    assert profiles.profile_for(kind="", sector="").slug == "home"


# --- validation -----------------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_path():
    text = small_file(
        profiles="""
          - slug: home
            name: Home
            provisional: true
            source: test
            colour: green
            stages:
              - {slug: first, name: First, after: sunrise, hours: 24}
              - {slug: second, name: Second, after: third, hours: 1}
              - {slug: third, name: Third, after: second, hours: 2, days: 1}
              - {slug: fourth, name: Fourth, after: awareness, hours: -5}
              - {slug: first, name: First again, after: awareness, months: 1}
              - {slug: later, name: Later, after: fifth, hours: 1}
              - {slug: fifth, name: Fifth, after: awareness, hours: 1}
          - slug: home
            name: Home again
            provisional: false
            source: test
            stages:
              - {slug: awareness, name: Clash, after: awareness, hours: 1}
              - {slug: asked, name: Asked, after: awareness, due: on-request, days: 2}
              - {slug: bare, name: Bare, after: awareness}
        """,
        assignments="""
          default: home
          by_kind: {cii-operator: nowhere}
          by_sector: {banking: elsewhere}
        """,
    )
    errors = errors_of(text)
    expected = {
        "profiles[0].colour": "Extra inputs are not permitted",
        "profiles[0].stages[0].after": "unknown anchor 'sunrise'",
        "profiles[0].stages[1].after": "makes a cycle: second -> third -> second",
        "profiles[0].stages[2].days": "give only one of hours, days or months (hours is given too)",
        "profiles[0].stages[3].hours": "greater than 0",
        "profiles[0].stages[4].slug": "'first' is already used by profiles[0].stages[0]",
        "profiles[0].stages[5].after": "'fifth' is a later stage",
        "profiles[1].slug": "'home' is already used by profiles[0]",
        "profiles[1].stages[0].slug": "'awareness' is an event name",
        "profiles[1].stages[1].days": "an on-request stage has no deadline",
        "profiles[1].stages[2]": "give one of hours, days or months (or due: on-request)",
        "assignments.by_kind.cii-operator": "unknown profile 'nowhere'",
        "assignments.by_sector.banking": "unknown profile 'elsewhere'",
    }
    assert set(errors) == set(expected)
    for loc, fragment in expected.items():
        assert fragment in errors[loc], (loc, errors[loc])
    assert "cycle" not in errors["profiles[0].stages[5].after"]
    # They are listed in the order of the file.
    with pytest.raises(InvalidInput, match=r"has 13 error\(s\)") as caught:
        parse_profiles(text)
    locs = [error.loc for error in caught.value.errors]
    assert (
        locs.index("profiles[0].stages[0].after")
        < locs.index("profiles[1].slug")
        < locs.index("assignments.by_kind.cii-operator")
    )


def test_an_anchor_may_only_be_an_earlier_stage_even_without_a_cycle():
    errors = errors_of(
        small_file(
            profiles="""
              - slug: home
                name: Home
                provisional: true
                source: test
                stages:
                  - {slug: a, name: A, after: b, hours: 1}
                  - {slug: b, name: B, after: awareness, hours: 1}
                  - {slug: c, name: C, after: c, hours: 1}
            """,
            assignments="default: home",
        )
    )
    assert set(errors) == {"profiles[0].stages[0].after", "profiles[0].stages[2].after"}
    assert "later stage" in errors["profiles[0].stages[0].after"]
    assert "cannot follow itself" in errors["profiles[0].stages[2].after"]


def test_caps_service_levels_and_the_default_are_checked():
    errors = errors_of(
        small_file(
            profiles="""
              - slug: service-levels
                name: Clash
                provisional: false
                source: test
                stages:
                  - {slug: s, name: S, after: classification, hours: 4, latest: {after: b, hours: 1, days: 1}}
                  - {slug: b, name: B, after: awareness, hours: 1}
            """,
            assignments="default: home",
            service_levels="""
              - {slug: acknowledge, name: Acknowledge, after: reception, hours: 0}
            """,
        )
    )
    assert set(errors) == {
        "profiles[0].slug",
        "profiles[0].stages[0].latest.after",
        "profiles[0].stages[0].latest.days",
        "assignments.default",
        "service_levels[0].after",
        "service_levels[0].hours",
    }
    assert "reserved" in errors["profiles[0].slug"]
    assert "unknown profile 'home'" in errors["assignments.default"]


@pytest.mark.parametrize(
    ("text", "loc", "fragment"),
    [
        ("profiles: [", "line 1, column 12", ""),
        ("- just a list", "", "expected a mapping"),
        ('version: "1"\nversion: "1"\n', "line 2, column 1", "'version' is given twice"),
        ("profiles: []\nassignments: {default: x}\n", "version", "Field required"),
    ],
)
def test_malformed_files(text, loc, fragment):
    errors = errors_of(text)
    assert loc in errors
    assert fragment in errors[loc]


def test_a_duplicate_key_inside_a_stage_is_caught():
    text = small_file(
        profiles="""
          - slug: home
            name: Home
            provisional: true
            source: test
            stages:
              - {slug: first, name: First, after: awareness, hours: 24, hours: 2}
        """,
        assignments="default: home",
    )
    assert any("'hours' is given twice" in msg for msg in errors_of(text).values())


def test_the_dataclasses_guard_their_invariants():
    with pytest.raises(ValueError, match="exactly one"):
        StageSpec("s", "S", "awareness", hours=1, days=1)
    with pytest.raises(ValueError, match="exactly one"):
        StageSpec("s", "S", "awareness")
    with pytest.raises(ValueError, match="negative"):
        StageSpec("s", "S", "awareness", hours=-1)
    with pytest.raises(ValueError, match="no deadline"):
        StageSpec("s", "S", "awareness", hours=1, optional=True)
    with pytest.raises(ValueError, match="neither an event nor an earlier stage"):
        Profile(
            "p",
            "P",
            False,
            "x",
            (StageSpec("a", "A", "b", hours=1), StageSpec("b", "B", "awareness", hours=1)),
        )
    with pytest.raises(ValueError, match="taken"):
        Profile("p", "P", False, "x", (StageSpec("detection", "A", "awareness", hours=1),))
    with pytest.raises(ValueError, match="unknown profiles: nope"):
        ProfileSet(profiles={"pk": PK}, service_levels=PROFILES.service_levels, default="nope")


# --- properties -----------------------------------------------------------------------------------------

ZONES = st.sampled_from([UTC, PKT, timezone(timedelta(hours=-3, minutes=-30)), BERLIN])
MOMENTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=ZONES)  # noqa: DTZ001
OFFSETS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=70))
ALL_PROFILES = st.sampled_from([*PROFILES.profiles.values(), PROFILES.service_levels])


@settings(max_examples=300, deadline=None)
@given(
    profile=ALL_PROFILES,
    aware=MOMENTS,
    event_offsets=st.lists(OFFSETS, min_size=3, max_size=3),
    met_offsets=st.lists(st.none() | OFFSETS, min_size=4, max_size=4),
    now_offset=OFFSETS,
)
def test_states_are_consistent(profile, aware, event_offsets, met_offsets, now_offset):
    events = {"awareness": aware}
    for name, offset in zip(("detection", "classification", "received"), event_offsets, strict=True):
        events[name] = aware + offset
    met = {
        stage.slug: aware + offset
        for stage, offset in zip(profile.stages, met_offsets, strict=False)
        if offset is not None
    }
    now = aware + now_offset
    states = evaluate(profile, events=events, met=met, now=now)

    assert [s.slug for s in states] == [s.slug for s in profile.stages]
    for spec, state in zip(profile.stages, states, strict=True):
        assert state.met_at == met.get(spec.slug)
        assert (state.state in ("met", "met-late")) == (spec.slug in met)
        if spec.optional:
            assert state.due_at is None
            assert state.state in ("met", "on-request")
            continue
        assert state.due_at is not None  # every event is known here
        # Instants, not wall clocks: Python compares datetimes in one ZoneInfo by their wall clocks.
        due, met_at = utc(state.due_at), utc(state.met_at) if state.met_at else None
        late = met_at is not None and met_at > due
        assert (state.state == "met-late") == late
        overdue = met_at is None and utc(now) > due
        assert (state.state == "overdue") == overdue
        if state.state == "overdue":
            assert state.overdue_by == utc(now) - due
            assert state.overdue_by > timedelta(0)
        elif state.state == "met-late":
            assert met_at is not None
            assert state.overdue_by == met_at - due
        else:
            assert state.overdue_by is None
        if spec.anchor in events and spec.latest is None and not spec.months:
            assert due == utc(events[spec.anchor]) + timedelta(hours=spec.hours, days=spec.days)
    urgent = next_deadline(states)
    open_due = [utc(s.due_at) for s in states if s.state in ("due", "overdue") and s.due_at is not None]
    assert (urgent is None) == (not open_due)
    if urgent is not None:
        assert urgent.due_at is not None
        assert utc(urgent.due_at) == min(open_due)


NO_DST = st.sampled_from([UTC, PKT, timezone(timedelta(hours=5, minutes=45))])


@settings(max_examples=300, deadline=None)
@given(
    profile=ALL_PROFILES,
    aware=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=NO_DST),  # noqa: DTZ001
    shift=OFFSETS,
    classification_offset=OFFSETS,
    met_offsets=st.lists(st.none() | OFFSETS, min_size=4, max_size=4),
)
def test_due_times_move_monotonically_with_awareness(
    profile, aware, shift, classification_offset, met_offsets
):
    # Wall-clock months are monotone where the clocks never go back (no daylight saving in these zones).
    fixed = {"detection": aware, "classification": aware + classification_offset, "received": aware}
    met = {
        stage.slug: aware + shift + offset
        for stage, offset in zip(profile.stages, met_offsets, strict=False)
        if offset is not None
    }
    now = aware
    earlier = evaluate(profile, events={**fixed, "awareness": aware}, met=met, now=now)
    later = evaluate(profile, events={**fixed, "awareness": aware + shift}, met=met, now=now)
    for before, after in zip(earlier, later, strict=True):
        if before.due_at is not None and after.due_at is not None:
            assert utc(before.due_at) <= utc(after.due_at), (before, after)
