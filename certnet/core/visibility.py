"""Who may see and do what: tenancy + TLP 2.0, decided here and nowhere else.

A record that takes part declares a `VisibilitySpec` (owner organisation, TLP, optional author,
named TLP:RED recipients and organisations it was shared with) and uses `RestrictedManager`, so every
read starts with `Model.objects.restrict(user, action)`.

The rules (docs/visibility.md has the table):
- CLEAR: anyone, also anonymous callers.
- GREEN: every user who is a member of some organisation on the platform.
- AMBER and AMBER+STRICT: members of the owner organisation, of every CERT on the owner's reports-to
  chain, and of organisations the record was shared with.
- RED: the author and the named users. Whoever would see the record at AMBER+STRICT sees a stub.
- Platform administrators see every record below RED; RED shows them the stub unless named.

Two implementations of the same rules live here: `_view_q` builds the SQL filter used for lists, and
`decide()` judges one record in Python. Property tests hold them to each other.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from django.db import models
from django.db.models import Q

from certnet.core import lookups  # noqa: F401 - registers the __in_ids lookup used below
from certnet.core.errors import Forbidden, NotFound
from certnet.core.roles import Role
from certnet.core.tlp import TLP

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    UserLike = AbstractBaseUser | AnonymousUser


class Access(enum.IntEnum):
    NONE = 0
    STUB = 1
    FULL = 2


@dataclass(frozen=True)
class ActionRule:
    """The least role needed in the owner organisation itself, and in a CERT above it (None: never).
    `platform_admins`: whether platform administrators may do it too (not for duties that belong to
    the owner organisation alone, such as filing its statutory reports)."""

    own: Role | None
    chain: Role | None
    platform_admins: bool = True
    # The least role in the owner organisation when that organisation is itself a CERT (None: `own`
    # decides): a CERT is the handling CERT of its own incidents, so its handlers triage and handle
    # them though a constituent may not do so for itself.
    cert_itself: Role | None = None


DEFAULT_ACTION_RULES: Mapping[str, ActionRule] = {
    "change": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
    "delete": ActionRule(own=Role.MANAGER, chain=Role.MANAGER),
    "share": ActionRule(own=Role.ANALYST, chain=Role.HANDLER),
}

READ_ACTIONS = ("view", "view_stub")
# Not an ActionRule: TLP is lowered only by the owner organisation (analyst or above) or a platform
# administrator, whatever the record type. `restrict(user, LOWER_TLP)` is may_lower_tlp for a set.
LOWER_TLP = "lower_tlp"


@dataclass(frozen=True)
class VisibilitySpec:
    """How a model exposes the facts the rules need. `owner` is a lookup path; 'pk' means the record is
    an organisation and owns itself."""

    owner: str = "owner"
    tlp: str = "tlp"
    author: str | None = None
    named_users: str | None = None
    shared_with: str | None = None
    actions: Mapping[str, ActionRule] = field(default_factory=lambda: dict(DEFAULT_ACTION_RULES))

    def rule(self, action: str) -> ActionRule:
        try:
            return self.actions[action]
        except KeyError:
            raise ValueError(f"unknown action {action!r} for this record type") from None


# --- where the facts about people and organisations come from --------------------------------
# core imports no domain app; accounts and registry plug their sources in when Django starts.

MembershipSource = Callable[[int], Mapping[int, Role]]
HierarchySource = Callable[[Iterable[int]], set[int]]
CertSource = Callable[[Iterable[int]], set[int]]  # which of these organisations are CERTs

_membership_source: MembershipSource | None = None
_hierarchy_source: HierarchySource | None = None
_cert_source: CertSource | None = None


def set_membership_source(source: MembershipSource) -> None:
    global _membership_source
    _membership_source = source


def set_hierarchy_source(source: HierarchySource) -> None:
    global _hierarchy_source
    _hierarchy_source = source


def set_cert_source(source: CertSource) -> None:
    global _cert_source
    _cert_source = source


@dataclass
class Principal:
    """What the rules need to know about the acting user, computed once per user object."""

    user_id: int | None
    is_authenticated: bool
    is_platform_admin: bool
    roles: Mapping[int, Role]
    _descendants: dict[Role, frozenset[int]] = field(default_factory=dict, repr=False)
    _certs: frozenset[int] | None = field(default=None, repr=False)

    @property
    def is_member(self) -> bool:
        return bool(self.roles)

    def orgs_with(self, least: Role) -> frozenset[int]:
        return frozenset(org for org, role in self.roles.items() if role.includes(least))

    def below(self, least: Role) -> frozenset[int]:
        """Organisations under (not including) those where the user holds at least `least`."""
        if least not in self._descendants:
            own = self.orgs_with(least)
            found = _hierarchy_source(own) if (own and _hierarchy_source) else set()
            self._descendants[least] = frozenset(found)
        return self._descendants[least]

    def reach(self) -> frozenset[int]:
        """Organisations whose AMBER records this user's memberships admit: their own and those below."""
        return self.orgs_with(Role.VIEWER) | self.below(Role.VIEWER)

    def certs_held(self) -> frozenset[int]:
        """The CERTs among the user's organisations."""
        if self._certs is None:
            self._certs = frozenset(_cert_source(self.roles) if (self.roles and _cert_source) else ())
        return self._certs

    def may_act_on(self, rule: ActionRule) -> frozenset[int]:
        own = self.orgs_with(rule.own) if rule.own else frozenset()
        chain = self.below(rule.chain) if rule.chain else frozenset()
        if rule.cert_itself:
            own |= self.orgs_with(rule.cert_itself) & self.certs_held()
        return own | chain


_PRINCIPAL_ATTR = "_certnet_principal"


def principal_for(user: UserLike | None) -> Principal:
    if user is None or not user.is_authenticated:
        return Principal(None, False, False, {})
    cached: Principal | None = getattr(user, _PRINCIPAL_ATTR, None)
    if cached is not None:
        return cached
    roles = _membership_source(int(user.pk)) if _membership_source else {}
    return principal_with_roles(user, roles)


def principal_with_roles(user: UserLike, roles: Mapping[int, Role]) -> Principal:
    """principal_for(user), from memberships the caller has read already: a job judging many people
    at once reads all their memberships in one query, then asks here. Cached on the user object."""
    if user.pk is None:
        raise ValueError("a principal needs a saved user")
    principal = Principal(
        user_id=int(user.pk),
        is_authenticated=True,
        is_platform_admin=bool(getattr(user, "is_platform_admin", False)) and user.is_active,
        roles=dict(roles) if user.is_active else {},
    )
    setattr(user, _PRINCIPAL_ATTR, principal)
    return principal


def forget_principal(user: UserLike) -> None:
    """Drop the cached facts, e.g. after the user's memberships changed within one request or test."""
    if hasattr(user, _PRINCIPAL_ATTR):
        delattr(user, _PRINCIPAL_ATTR)


# --- the rules in Python: one record ----------------------------------------------------------


@dataclass(frozen=True)
class RecordFacts:
    owner_id: int
    tlp: TLP
    author_id: int | None = None
    named_user_ids: frozenset[int] = frozenset()
    shared_with_ids: frozenset[int] = frozenset()


def decide(principal: Principal, facts: RecordFacts) -> Access:
    """How much of one record the principal may see."""
    tlp = TLP(facts.tlp)
    personally_named = principal.user_id is not None and (
        principal.user_id == facts.author_id or principal.user_id in facts.named_user_ids
    )
    if tlp == TLP.CLEAR:
        return Access.FULL
    if not principal.is_authenticated:
        return Access.NONE
    if tlp == TLP.RED and personally_named:
        return Access.FULL
    admitted_by_chain = (
        principal.is_platform_admin
        or facts.owner_id in principal.reach()
        or bool(facts.shared_with_ids & principal.orgs_with(Role.VIEWER))
    )
    if tlp == TLP.RED:
        return Access.STUB if admitted_by_chain else Access.NONE
    if tlp == TLP.GREEN and (principal.is_member or principal.is_platform_admin):
        return Access.FULL
    return Access.FULL if admitted_by_chain else Access.NONE


@dataclass(frozen=True)
class OwnerFilter:
    """Which owners' records at one TLP a user may read in full, for stores outside the database
    (the Parquet events store): `everyone`, or only records owned by `owner_ids`."""

    everyone: bool
    owner_ids: frozenset[int]

    def admits(self, owner_id: int) -> bool:
        return self.everyone or owner_id in self.owner_ids


def readable_owners(user: UserLike | None, tlp: TLP | str) -> OwnerFilter:
    """The rule of `decide` for a whole store at once: records with no author, no named readers and
    no sharing (feed events), so the owner and the TLP decide alone."""
    principal = principal_for(user)
    label = TLP(tlp)
    if label == TLP.CLEAR:
        return OwnerFilter(everyone=True, owner_ids=frozenset())
    if not principal.is_authenticated or label == TLP.RED:
        return OwnerFilter(everyone=False, owner_ids=frozenset())
    if principal.is_platform_admin or (label == TLP.GREEN and principal.is_member):
        return OwnerFilter(everyone=True, owner_ids=frozenset())
    return OwnerFilter(everyone=False, owner_ids=principal.reach())


def may(principal: Principal, action: str, facts: RecordFacts, spec: VisibilitySpec) -> bool:
    """Whether the principal may do `action` ('view', 'view_stub', 'change', …) to one record."""
    access = decide(principal, facts)
    if action == "view":
        return access == Access.FULL
    if action == "view_stub":
        return access >= Access.STUB
    rule = spec.rule(action)
    if access != Access.FULL:
        return False
    if principal.is_platform_admin and rule.platform_admins:
        return True
    return facts.owner_id in principal.may_act_on(rule)


# --- the rules in SQL: lists -------------------------------------------------------------------


def _lookup(path: str, suffix: str) -> str:
    return f"{path}__{suffix}" if suffix else path


def _ids_path(path: str) -> str:
    """The lookup that compares an organisation reference's id (a foreign key's column, no join)."""
    return "pk__in_ids" if path == "pk" else f"{path}__id__in_ids"


def _owner_in(spec: VisibilitySpec, org_ids: frozenset[int]) -> Q:
    # A frozenset, not a list: Django resolves every element of a list value one by one.
    return Q(**{_ids_path(spec.owner): org_ids})


def _linked_to(model: type[models.Model], path: str, suffix: str, value: Any) -> Q:
    """Records whose `path` relation leads to `value`, as a `pk IN (subquery)`. A many-to-many field
    of the model itself is read from its link table alone: joining back to the model's own table
    made PostgreSQL probe it once per linked record (thousands of probes on a large table)."""
    field = model._meta.get_field(path) if "__" not in path else None
    if isinstance(field, models.ManyToManyField):
        through = cast("type[models.Model]", field.remote_field.through)
        links = through._default_manager.filter(**{f"{field.m2m_reverse_field_name()}__{suffix}": value})
        return Q(pk__in=links.values(field.m2m_field_name()))
    related = model._default_manager.filter(**{f"{path}__{suffix}": value})
    return Q(pk__in=related.values("pk"))


def _personally_named_q(model: type[models.Model], spec: VisibilitySpec, user_id: int) -> Q:
    q = Q(pk__in=[])
    if spec.author:
        q |= Q(**{_lookup(spec.author, "id"): user_id})
    if spec.named_users:
        # A subquery, not a join, so a record with several named users is still returned once.
        q |= _linked_to(model, spec.named_users, "id", user_id)
    return q


def _shared_q(model: type[models.Model], spec: VisibilitySpec, org_ids: frozenset[int]) -> Q:
    if not spec.shared_with or not org_ids:
        return Q(pk__in=[])
    return _linked_to(model, spec.shared_with, "id__in_ids", org_ids)


def _view_q(model: type[models.Model], spec: VisibilitySpec, principal: Principal, *, stub: bool) -> Q:
    def tlp_is(*labels: TLP) -> Q:
        return Q(**{_lookup(spec.tlp, "in"): [str(label) for label in labels]})

    clear = tlp_is(TLP.CLEAR)
    if not principal.is_authenticated or principal.user_id is None:
        return clear
    red_named = tlp_is(TLP.RED) & _personally_named_q(model, spec, principal.user_id)
    if principal.is_platform_admin:
        chain = Q()  # everything
    else:
        chain = _owner_in(spec, principal.reach()) | _shared_q(model, spec, principal.orgs_with(Role.VIEWER))
    amber = tlp_is(TLP.AMBER, TLP.AMBER_STRICT) & chain
    q = clear | amber | red_named
    if principal.is_member or principal.is_platform_admin:
        q |= tlp_is(TLP.GREEN)
    if stub:
        q |= tlp_is(TLP.RED) & chain
    return q


def restriction(model: type[models.Model], spec: VisibilitySpec, user: UserLike | None, action: str) -> Q:
    principal = principal_for(user)
    if action == "view":
        return _view_q(model, spec, principal, stub=False)
    if action == "view_stub":
        return _view_q(model, spec, principal, stub=True)
    if action == LOWER_TLP:
        full_view = _view_q(model, spec, principal, stub=False)
        if principal.is_platform_admin:
            return full_view
        return full_view & _owner_in(spec, principal.orgs_with(Role.ANALYST))
    rule = spec.rule(action)
    full_view = _view_q(model, spec, principal, stub=False)
    if principal.is_platform_admin and rule.platform_admins:
        return full_view
    return full_view & _owner_in(spec, principal.may_act_on(rule))


_M = TypeVar("_M", bound=models.Model)


class RestrictedQuerySet(models.QuerySet[_M], Generic[_M]):
    def restrict(self, user: UserLike | None, action: str = "view") -> RestrictedQuerySet[_M]:
        spec = spec_of(self.model)
        return self.filter(restriction(self.model, spec, user, action))


class RestrictedManager(models.Manager[_M]):
    """The default manager of every record that has an owner organisation and a TLP."""

    def get_queryset(self) -> RestrictedQuerySet[_M]:
        return RestrictedQuerySet(self.model, using=self._db)

    def restrict(self, user: UserLike | None, action: str = "view") -> RestrictedQuerySet[_M]:
        return self.get_queryset().restrict(user, action)


def spec_of(model: type[models.Model]) -> VisibilitySpec:
    spec = getattr(model, "visibility", None)
    if not isinstance(spec, VisibilitySpec):
        raise TypeError(f"{model.__name__} declares no VisibilitySpec")
    return spec


def facts_of(record: models.Model) -> RecordFacts:
    """Read the rule facts off one loaded record (a query each for shares, and for named users at RED)."""
    spec = spec_of(type(record))

    def follow(path: str) -> Any:
        value: Any = record
        for part in path.split("__"):
            value = getattr(value, part)
        return value

    owner = record.pk if spec.owner == "pk" else follow(spec.owner)
    owner_id = int(owner.pk if isinstance(owner, models.Model) else owner)
    author_id = None
    if spec.author:
        author = follow(spec.author)
        author_id = int(author.pk) if author is not None else None
    tlp = TLP(follow(spec.tlp))
    # Named readers count only at RED (see decide), so a record at any other label skips that query.
    named = (
        frozenset(int(pk) for pk in follow(spec.named_users).values_list("pk", flat=True))
        if spec.named_users and tlp == TLP.RED
        else frozenset()
    )
    shared = (
        frozenset(int(pk) for pk in follow(spec.shared_with).values_list("pk", flat=True))
        if spec.shared_with
        else frozenset()
    )
    return RecordFacts(owner_id, tlp, author_id, named, shared)


def can(user: UserLike | None, action: str, record: models.Model) -> bool:
    return may(principal_for(user), action, facts_of(record), spec_of(type(record)))


def require(user: UserLike | None, action: str, record: models.Model, *, label: str) -> None:
    """Raise NotFound if the user may not even see a stub of the record (as if it did not exist),
    Forbidden if they see it but may not do `action` to it. `label` names it in the message."""
    principal = principal_for(user)
    facts = facts_of(record)
    spec = spec_of(type(record))
    if not may(principal, "view_stub", facts, spec):
        raise NotFound(f"no {label}")
    if not may(principal, action, facts, spec):
        raise Forbidden(f"you may not {action} {label}")


def may_lower_tlp(user: UserLike | None, record: models.Model) -> bool:
    """TLP may be raised by anyone who sees the record, lowered only by its owner organisation."""
    principal = principal_for(user)
    facts = facts_of(record)
    if decide(principal, facts) != Access.FULL:
        return False
    return principal.is_platform_admin or facts.owner_id in principal.orgs_with(Role.ANALYST)
