"""Reporting clocks: the deadlines an operator must meet after an incident, and the CERT's service levels.

No country's deadlines are hard-coded. They come as *reporting profiles* from a data file
(``certnet/incidents/data/reporting_profiles.yaml``); the Pakistan default is marked provisional because no
official deadline has been published. Each organisation kind or sector may be assigned another profile.

The file, version "1"::

    version: "1"
    profiles:
      - slug: eu-dora
        name: EU DORA (major ICT-related incident)
        provisional: false                      # required: is this deadline confirmed law?
        source: "Regulation (EU) 2022/2554 ..."  # required: where the deadlines come from
        notes: ["..."]                          # optional free text: variants the clock does not model
        stages:
          - slug: initial-notification
            name: Initial notification
            after: classification                # the anchor: an event, or an EARLIER stage's slug
            hours: 4                             # exactly one of hours / days / months, a positive integer
            latest: {after: awareness, hours: 24}  # optional cap: due at whichever comes first
          - {slug: intermediate-report, name: Intermediate report, after: initial-notification, hours: 72}
          - {slug: follow-up, name: Further information, after: initial-notification, due: on-request}
    assignments:
      default: pk-provisional
      by_kind: {cii-operator: pk-provisional}    # organisation kind -> profile slug
      by_sector: {banking: eu-dora}              # sector -> profile slug; sector wins over kind
    service_levels:                              # the CERT's own clocks, same stage schema
      - {slug: acknowledge, name: Acknowledge the report, after: received, hours: 4}

Rules (checked by :func:`parse_profiles`, every problem listed at once with its path):

* Events are the fixed set :data:`EVENTS` (awareness, detection, classification, received). A stage is
  anchored (``after``) to an event or to an earlier stage of the same profile, so anchors cannot form a
  cycle; a stage slug may not be an event name. The same holds for a ``latest`` cap.
* ``hours`` and ``days`` are elapsed time (``days: 14`` is 14 x 24 h, whatever the clocks do for daylight
  saving); ``months`` are calendar months on the wall clock of the anchor's timezone, the day clamped to the
  end of a shorter month (see :func:`add_months`).
* A stage "on request" / "as requested" has no deadline: it is written ``due: on-request`` with no
  hours/days/months and no cap, and becomes a :class:`StageSpec` with ``optional=True``. Such stages are
  listed (so they can be recorded as met) but never become due or overdue. Conditional deadlines the clock
  cannot model (a ransom-payment report, a shorter deadline for trust services) go in the profile's
  ``notes``.
* Profile slugs are unique, and ``service-levels`` is reserved for the service levels; stage slugs are unique
  within a profile; every assignment names an existing profile.

:func:`evaluate` turns a profile plus the times of the events and of the stages already met into one
:class:`StageState` per stage; :func:`next_deadline` picks the most urgent one to sort queues by.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from certnet.core.errors import FieldError, InvalidInput, invalid

__all__ = [
    "DEFAULT_PATH",
    "EVENTS",
    "SERVICE_LEVELS",
    "Cap",
    "Profile",
    "ProfileSet",
    "StageSpec",
    "StageState",
    "add_months",
    "evaluate",
    "load_profiles",
    "next_deadline",
    "parse_profiles",
]

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "reporting_profiles.yaml"

EVENTS: frozenset[str] = frozenset({"awareness", "detection", "classification", "received"})
"""The moments a clock can start from. 'received' is when the CERT received the report (service levels)."""

SERVICE_LEVELS = "service-levels"
"""The slug of the service-level profile; reserved, no reporting profile may use it."""

_DELTAS = ("hours", "days", "months")

State = Literal["met", "met-late", "due", "overdue", "on-request"]


# --- the specs -----------------------------------------------------------------------------------------


def _one_delta(what: str, hours: int, days: int, months: int) -> None:
    given = [name for name, value in zip(_DELTAS, (hours, days, months), strict=True) if value]
    if any(value < 0 for value in (hours, days, months)):
        raise ValueError(f"{what}: hours, days and months cannot be negative")
    if len(given) != 1:
        raise ValueError(
            f"{what}: give exactly one of hours, days, months (got {', '.join(given) or 'none'})"
        )


@dataclass(frozen=True)
class Cap:
    """'But no later than': the stage is due at whichever comes first, its own deadline or this one."""

    anchor: str
    hours: int = 0
    days: int = 0
    months: int = 0

    def __post_init__(self) -> None:
        _one_delta(f"cap after {self.anchor!r}", self.hours, self.days, self.months)


@dataclass(frozen=True)
class StageSpec:
    """One deadline: `anchor` (an event or an earlier stage's slug) plus one of hours, days or months.

    An optional stage (on request) has no deadline: all three are 0 and there is no cap."""

    slug: str
    name: str
    anchor: str
    hours: int = 0
    days: int = 0
    months: int = 0
    optional: bool = False
    latest: Cap | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.optional:
            if self.hours or self.days or self.months or self.latest is not None:
                raise ValueError(f"stage {self.slug!r}: an on-request stage has no deadline")
        else:
            _one_delta(f"stage {self.slug!r}", self.hours, self.days, self.months)

    def describe(self) -> str:
        """The deadline in words, e.g. '24 h after awareness' or 'on request'."""
        if self.optional:
            return "on request"
        text = f"{_delta_text(self.hours, self.days, self.months)} after {self.anchor}"
        if self.latest is not None:
            cap = self.latest
            text += f", at the latest {_delta_text(cap.hours, cap.days, cap.months)} after {cap.anchor}"
        return text


def _delta_text(hours: int, days: int, months: int) -> str:
    if hours:
        return f"{hours} h"
    if days:
        return f"{days} day" + ("s" if days != 1 else "")
    return f"{months} month" + ("s" if months != 1 else "")


@dataclass(frozen=True)
class Profile:
    """A set of reporting deadlines (a jurisdiction's, or the CERT's own service levels)."""

    slug: str
    name: str
    provisional: bool
    source: str
    stages: tuple[StageSpec, ...]
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for stage in self.stages:
            if stage.slug in seen or stage.slug in EVENTS:
                raise ValueError(f"profile {self.slug!r}: stage slug {stage.slug!r} is taken")
            anchors = [stage.anchor] + ([stage.latest.anchor] if stage.latest is not None else [])
            for anchor in anchors:
                if anchor not in EVENTS and anchor not in seen:
                    raise ValueError(
                        f"profile {self.slug!r}: stage {stage.slug!r} follows {anchor!r},"
                        " which is neither an event nor an earlier stage"
                    )
            seen.add(stage.slug)

    def stage(self, slug: str) -> StageSpec:
        for stage in self.stages:
            if stage.slug == slug:
                return stage
        raise invalid("stage", f"profile {self.slug!r} has no stage {slug!r}")


@dataclass(frozen=True)
class ProfileSet:
    """All reporting profiles, which one applies to whom, and the CERT's service levels.

    The mappings are shared (the default set is cached): read them, do not change them."""

    profiles: dict[str, Profile]
    service_levels: Profile
    default: str
    by_kind: dict[str, str] = field(default_factory=dict)
    by_sector: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        targets = [self.default, *self.by_kind.values(), *self.by_sector.values()]
        unknown = sorted({slug for slug in targets if slug not in self.profiles})
        if unknown:
            raise ValueError(f"assignments name unknown profiles: {', '.join(unknown)}")

    def get(self, slug: str) -> Profile:
        """The profile `slug` ('service-levels' gives the service levels); InvalidInput if there is none."""
        if slug == SERVICE_LEVELS:
            return self.service_levels
        try:
            return self.profiles[slug]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise invalid("profile", f"unknown reporting profile {slug!r}; known: {known}") from None

    def profile_for(self, *, kind: str = "", sector: str = "") -> Profile:
        """The profile for an organisation: its sector's if assigned, else its kind's, else the default."""
        slug = (self.by_sector.get(sector) if sector else None) or (self.by_kind.get(kind) if kind else None)
        return self.profiles[slug or self.default]


# --- time arithmetic ------------------------------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` plus calendar months on its own wall clock, keeping its tzinfo; the day is clamped to the
    end of a shorter month (2025-01-31 + 1 month = 2025-02-28, 2024-01-31 + 1 month = 2024-02-29).

    Negative `months` go back. Wall-clock arithmetic: across a daylight-saving change the elapsed time
    differs from the same wall time a month earlier by the change."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _shift(moment: datetime, hours: int, days: int, months: int) -> datetime:
    if months:
        return add_months(moment, months)
    # Elapsed time: computed in UTC so that a daylight-saving change does not stretch or shrink it.
    return (_utc(moment) + timedelta(hours=hours, days=days)).astimezone(moment.tzinfo)


def _require_aware(what: str, moment: datetime) -> None:
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got the naive {moment.isoformat()}")


# --- evaluation -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageState:
    """Where one stage stands. `overdue_by`: now - due_at when overdue, met_at - due_at when met late."""

    slug: str
    name: str
    due_at: datetime | None
    met_at: datetime | None
    state: State
    overdue_by: timedelta | None

    @property
    def open(self) -> bool:
        """Still to be done against a deadline (due or overdue)."""
        return self.state in ("due", "overdue")


def evaluate(
    profile: Profile,
    *,
    events: Mapping[str, datetime | None],
    met: Mapping[str, datetime | None],
    now: datetime,
) -> list[StageState]:
    """The state of every stage of `profile`, in profile order.

    `events`: when the events happened (awareness, classification, ...); one that is missing or None is not
    known yet. `met`: when stages were met, by stage slug (None: not met). Entries naming no event or no
    stage of this profile are ignored (an organisation may have moved to another profile). A stage anchored
    to another stage runs from that stage's met time if it was met, else from its due time. With its anchor
    unknown a stage is 'due' with no due_at. Every datetime must be timezone-aware (ValueError otherwise);
    due times are given in the timezone of the moment they were computed from."""
    _require_aware("now", now)
    for name, moment in events.items():
        if moment is not None:
            _require_aware(f"events[{name!r}]", moment)
    for name, moment in met.items():
        if moment is not None:
            _require_aware(f"met[{name!r}]", moment)

    after_stage: dict[str, datetime | None] = {}  # stage slug -> the time later stages run from

    def anchor_time(anchor: str) -> datetime | None:
        return after_stage[anchor] if anchor in after_stage else events.get(anchor)

    states: list[StageState] = []
    for stage in profile.stages:
        met_at = met.get(stage.slug)
        due_at = None if stage.optional else _due(stage, anchor_time)
        states.append(_state(stage, due_at, met_at, now))
        after_stage[stage.slug] = met_at if met_at is not None else due_at
    return states


def _due(stage: StageSpec, anchor_time: Callable[[str], datetime | None]) -> datetime | None:
    start = anchor_time(stage.anchor)
    if start is None:
        return None
    due = _shift(start, stage.hours, stage.days, stage.months)
    cap = stage.latest
    if cap is not None:
        cap_start = anchor_time(cap.anchor)
        if cap_start is not None:
            latest = _shift(cap_start, cap.hours, cap.days, cap.months)
            if _utc(latest) < _utc(due):
                due = latest
    return due


def _state(stage: StageSpec, due_at: datetime | None, met_at: datetime | None, now: datetime) -> StageState:
    state: State
    overdue_by: timedelta | None = None
    if met_at is not None:
        if due_at is not None and _utc(met_at) > _utc(due_at):
            state, overdue_by = "met-late", _utc(met_at) - _utc(due_at)
        else:
            state = "met"
    elif stage.optional:
        state = "on-request"
    elif due_at is not None and _utc(now) > _utc(due_at):
        state, overdue_by = "overdue", _utc(now) - _utc(due_at)
    else:
        state = "due"
    return StageState(stage.slug, stage.name, due_at, met_at, state, overdue_by)


def next_deadline(states: Iterable[StageState]) -> StageState | None:
    """The unmet stage with the earliest due time (overdue ones first, naturally), or None: the key to sort
    a queue by urgency. Stages without a due time (anchor unknown, on request) do not count."""
    best: StageState | None = None
    for state in states:
        if not state.open or state.due_at is None:
            continue
        if best is None or (best.due_at is not None and _utc(state.due_at) < _utc(best.due_at)):
            best = state
    return best


# --- the file -------------------------------------------------------------------------------------------

_SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_Count = Annotated[StrictInt, Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class _CapModel(_Strict):
    after: str = Field(min_length=1)
    hours: _Count | None = None
    days: _Count | None = None
    months: _Count | None = None


class _StageModel(_Strict):
    slug: str = Field(pattern=_SLUG, max_length=60)
    name: str = Field(min_length=1)
    after: str = Field(min_length=1)
    hours: _Count | None = None
    days: _Count | None = None
    months: _Count | None = None
    due: Literal["on-request"] | None = None
    latest: _CapModel | None = None
    note: str = ""


class _ProfileModel(_Strict):
    slug: str = Field(pattern=_SLUG, max_length=40)  # stored on incidents in a 40-character field
    name: str = Field(min_length=1)
    provisional: StrictBool
    source: str = Field(min_length=1)
    notes: list[str] = []
    stages: list[_StageModel] = Field(min_length=1)


class _AssignmentsModel(_Strict):
    default: str = Field(min_length=1)
    by_kind: dict[str, str] = {}
    by_sector: dict[str, str] = {}


class _FileModel(_Strict):
    version: Literal["1"]
    profiles: list[_ProfileModel] = Field(min_length=1)
    assignments: _AssignmentsModel
    service_levels: list[_StageModel] = []


_Loc = tuple[int | str, ...]
_SECTIONS = {"version": 0, "profiles": 1, "assignments": 2, "service_levels": 3}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"{key!r} is given twice",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _loc(parts: _Loc) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _sort_key(parts: _Loc) -> tuple[tuple[int, int, str], ...]:
    key: list[tuple[int, int, str]] = []
    for position, part in enumerate(parts):
        if isinstance(part, int):
            key.append((0, part, ""))
        elif position == 0:
            key.append((1, _SECTIONS.get(part, len(_SECTIONS)), part))
        else:
            key.append((1, 0, part))
    return tuple(key)


def parse_profiles(text: str, *, source: str = "reporting profiles") -> ProfileSet:
    """Parse and check a reporting-profiles file (YAML text). Raise InvalidInput listing every problem with
    its path (e.g. 'profiles[2].stages[0].hours: ...'); the checks are described in the module docstring."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise InvalidInput(
            f"{source} is not valid YAML ({where})",
            errors=[FieldError(where, str(getattr(exc, "problem", None) or exc))],
        ) from None
    if not isinstance(raw, dict):
        raise InvalidInput(
            f"{source} must hold a mapping at the top level",
            errors=[FieldError("", "expected a mapping with 'version', 'profiles' and 'assignments'")],
        )
    problems: list[tuple[_Loc, str]] = []
    spec: _FileModel | None = None
    try:
        spec = _FileModel.model_validate(raw)
    except ValidationError as exc:
        problems += [(tuple(err["loc"]), err["msg"]) for err in exc.errors()]
    # The cross-checks read the raw mapping, so they run (and report) even where the structure is wrong.
    problems += _cross_check(raw)
    if problems or spec is None:
        problems.sort(key=lambda problem: _sort_key(problem[0]))
        errors = [FieldError(_loc(loc), msg) for loc, msg in problems]
        raise InvalidInput(f"{source} has {len(errors)} error(s)", errors=errors)
    return _build(spec)


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _cross_check(raw: Mapping[Any, Any]) -> list[tuple[_Loc, str]]:
    problems: list[tuple[_Loc, str]] = []
    profile_at: dict[str, int] = {}
    profiles = raw.get("profiles")
    if isinstance(profiles, list):
        for i, profile in enumerate(profiles):
            if not isinstance(profile, dict):
                continue
            slug = _text(profile.get("slug"))
            if slug is not None:
                if slug in profile_at:
                    problems.append(
                        (("profiles", i, "slug"), f"{slug!r} is already used by profiles[{profile_at[slug]}]")
                    )
                elif slug == SERVICE_LEVELS:
                    problems.append((("profiles", i, "slug"), f"{slug!r} is reserved for the service levels"))
                else:
                    profile_at[slug] = i
            problems += _check_stages(profile.get("stages"), ("profiles", i, "stages"))
    problems += _check_stages(raw.get("service_levels"), ("service_levels",))

    assignments = raw.get("assignments")
    if isinstance(assignments, dict):
        known = ", ".join(sorted(profile_at)) or "none"
        default = _text(assignments.get("default"))
        if default and default not in profile_at:
            problems.append((("assignments", "default"), f"unknown profile {default!r} (known: {known})"))
        for section in ("by_kind", "by_sector"):
            mapping = assignments.get(section)
            if not isinstance(mapping, dict):
                continue
            for key, target in mapping.items():
                slug = _text(target)
                if slug is not None and slug not in profile_at:
                    problems.append(
                        (("assignments", section, str(key)), f"unknown profile {slug!r} (known: {known})")
                    )
    return problems


def _check_stages(stages: object, base: _Loc) -> list[tuple[_Loc, str]]:
    if not isinstance(stages, list):
        return []
    problems: list[tuple[_Loc, str]] = []
    items: list[dict[Any, Any]] = [stage if isinstance(stage, dict) else {} for stage in stages]
    stage_at: dict[str, int] = {}
    anchors: list[str | None] = [_text(stage.get("after")) for stage in items]
    for i, stage in enumerate(items):
        slug = _text(stage.get("slug"))
        if slug is None:
            continue
        if slug in EVENTS:
            problems.append(((*base, i, "slug"), f"{slug!r} is an event name; give the stage another slug"))
        elif slug in stage_at:
            problems.append(
                ((*base, i, "slug"), f"{slug!r} is already used by {_loc((*base, stage_at[slug]))}")
            )
        else:
            stage_at[slug] = i
    for i, stage in enumerate(items):
        problems += _check_anchor(anchors[i], i, (*base, i, "after"), stage_at, anchors)
        cap = stage.get("latest")
        on_request = stage.get("due") == "on-request"
        if on_request:
            given = [name for name in _DELTAS if stage.get(name) is not None]
            for name in given:
                problems.append(((*base, i, name), "an on-request stage has no deadline; remove it"))
            if cap is not None:
                problems.append(((*base, i, "latest"), "an on-request stage has no deadline; remove it"))
        elif stage.get("due") is None:
            problems += _check_deltas(stage, (*base, i), "(or due: on-request)")
        if isinstance(cap, dict):
            problems += _check_anchor(
                _text(cap.get("after")), i, (*base, i, "latest", "after"), stage_at, anchors
            )
            problems += _check_deltas(cap, (*base, i, "latest"), "")
    return problems


def _check_deltas(mapping: Mapping[Any, Any], loc: _Loc, alternative: str) -> list[tuple[_Loc, str]]:
    given = [name for name in _DELTAS if mapping.get(name) is not None]
    if not given:
        return [(loc, " ".join(["give one of hours, days or months", alternative]).strip())]
    return [
        ((*loc, name), f"give only one of hours, days or months ({given[0]} is given too)")
        for name in given[1:]
    ]


def _check_anchor(
    anchor: str | None, i: int, loc: _Loc, stage_at: Mapping[str, int], anchors: Sequence[str | None]
) -> list[tuple[_Loc, str]]:
    if anchor is None or anchor in EVENTS:
        return []
    j = stage_at.get(anchor)
    if j is None:
        earlier = [slug for slug, k in stage_at.items() if k < i]
        choices = f"an event ({', '.join(sorted(EVENTS))})"
        if earlier:
            choices += f" or an earlier stage ({', '.join(earlier)})"
        return [(loc, f"unknown anchor {anchor!r}; expected {choices}")]
    if j == i:
        return [(loc, f"a stage cannot follow itself ({anchor!r})")]
    if j < i:
        return []
    msg = f"{anchor!r} is a later stage; a stage can only follow an event or an earlier stage"
    # Say so when following the anchors from there comes back here: the stages would wait on each other.
    path = [*[slug for slug, k in stage_at.items() if k == i][:1], anchor]
    current, visited = j, {j}
    while True:
        following = anchors[current]
        k = stage_at.get(following) if following is not None else None
        if k is None or following is None:
            break
        path.append(following)
        if k == i:
            return [(loc, f"{msg}, and this makes a cycle: {' -> '.join(path)}")]
        if k in visited:
            break
        visited.add(k)
        current = k
    return [(loc, msg)]


def _stage(model: _StageModel) -> StageSpec:
    cap = model.latest
    return StageSpec(
        slug=model.slug,
        name=model.name,
        anchor=model.after,
        hours=model.hours or 0,
        days=model.days or 0,
        months=model.months or 0,
        optional=model.due == "on-request",
        latest=(
            Cap(anchor=cap.after, hours=cap.hours or 0, days=cap.days or 0, months=cap.months or 0)
            if cap is not None
            else None
        ),
        note=model.note,
    )


def _build(spec: _FileModel) -> ProfileSet:
    profiles = {
        model.slug: Profile(
            slug=model.slug,
            name=model.name,
            provisional=model.provisional,
            source=model.source,
            stages=tuple(_stage(stage) for stage in model.stages),
            notes=tuple(model.notes),
        )
        for model in spec.profiles
    }
    service_levels = Profile(
        slug=SERVICE_LEVELS,
        name="CERT service levels",
        provisional=False,
        source="the CERT's own service levels",
        stages=tuple(_stage(stage) for stage in spec.service_levels),
    )
    return ProfileSet(
        profiles=profiles,
        service_levels=service_levels,
        default=spec.assignments.default,
        by_kind=dict(spec.assignments.by_kind),
        by_sector=dict(spec.assignments.by_sector),
    )


def load_profiles(path: Path | None = None) -> ProfileSet:
    """The profiles in `path`, by default the shipped file (read once and cached)."""
    if path is None:
        return _load_default()
    return _load(path)


@functools.lru_cache(maxsize=1)
def _load_default() -> ProfileSet:
    return _load(DEFAULT_PATH)


def _load(path: Path) -> ProfileSet:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise invalid(str(path), f"cannot read the reporting profiles: {exc.strerror or exc}") from None
    return parse_profiles(text, source=str(path))
