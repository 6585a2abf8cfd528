"""Who may see, change and act on every object: the one authority.

Each app registers a ``Policy`` for its shared models in its ``AppConfig.ready`` and the
environments app registers where membership lives. Everything else asks here:

- ``restrict(queryset, user, action)``: the rows ``user`` may ``action`` (every model's
  ``objects.restrict()`` is this; NetBox's ``restrict()`` is the model);
- ``may(user, obj, action)``: one object (a page's buttons, a POST, the admin);
- ``ids(user, queryset, pks, action)``: which of a page's or a batch's rows (one query);
- ``sees_all(user, model, action)``: whether the rule lets the user past every row (staff).

The rule, for every model: an inactive or anonymous user may nothing; a superuser may
everything; staff may the actions the policy lists in ``staff``; the owner may every action on
what is theirs (for models shared through one environment, only while it belongs to none: an
environment's channel is the environment's, whoever made it); a member of an environment may the
actions whose ``roles`` include their role (the environment's owner counts as every role) on what
is shared in it; a global permission in ``permissions`` grants its action on what the user may
view. Actions a policy does not name are the owner's alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import BooleanField, ExpressionWrapper, Q

VIEW, CHANGE, TRANSITION, USE, OWN = "view", "change", "transition", "use", "own"
EVERY_ROLE = ("viewer", "editor")


@dataclass(frozen=True)
class Policy:
    """How one model is shared.

    ``environments``: the path from the model to the environments that share it (a many-to-many
    such as ``"environments"``, a foreign key such as ``"environment"``, or ``"self"`` for the
    environment itself); None when nothing is shared. ``personal``: the path is a foreign key and
    the owner's rights hold only while it is empty. ``roles``: action -> membership roles that
    grant it. ``staff``: the actions staff may take on every row. ``permissions``: action -> a
    global permission that grants it on the rows the user may view.
    """

    owner: str = "owner"
    environments: str | None = None
    personal: bool = False
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    staff: frozenset[str] = frozenset()
    permissions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Membership:
    """Where environments and their members live (registered by the environments app)."""

    environment: type[models.Model]
    membership: type[models.Model]
    owner: str = "owner"
    user: str = "user"
    role: str = "role"
    environment_field: str = "environment"


def shared_by_one_environment() -> Policy:
    """A channel's or a window's rule: personal while it belongs to no environment, then the
    environment's (members see it, editors and the owner change it); staff see and change all."""
    return Policy(
        environments="environment",
        personal=True,
        roles={VIEW: EVERY_ROLE, CHANGE: ("editor",)},
        staff=frozenset({VIEW, CHANGE}),
    )


_policies: dict[type[models.Model], Policy] = {}
_membership: list[Membership] = []


def register(model: type[models.Model], policy: Policy) -> None:
    if model in _policies and _policies[model] != policy:
        raise ValueError(f"{model.__name__} already has another access policy.")
    _policies[model] = policy


def register_membership(membership: Membership) -> None:
    _membership[:] = [membership]


def environment_model() -> type[models.Model]:
    """The model of environments (registered by the environments app)."""
    if not _membership:
        raise LookupError("No environment membership is registered (core.access).")
    return _membership[0].environment


def policy_for(model: type[models.Model]) -> Policy:
    model = model._meta.concrete_model
    try:
        return _policies[model]
    except KeyError:
        raise LookupError(
            f"{model.__name__} has no access policy (core.access.register)."
        ) from None


def active(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
    )


def sees_all(user: Any, model: type[models.Model], action: str = VIEW) -> bool:
    """Whether ``user`` may ``action`` every row of ``model`` (a superuser, or staff for the
    actions the policy gives staff): callers skip their per-row filters then."""
    if not active(user):
        return False
    if user.is_superuser:
        return True
    return bool(user.is_staff and action in policy_for(model).staff)


def environments_of(user: Any, roles: Iterable[str]) -> models.QuerySet:
    """The environments ``user`` owns, or belongs to with one of ``roles``."""
    where = _membership[0] if _membership else None
    if where is None:
        raise LookupError("No environment membership is registered (core.access).")
    roles = tuple(roles)
    members = where.membership._default_manager.filter(
        **{where.user: user, f"{where.role}__in": roles}
    ).values(f"{where.environment_field}_id")
    return where.environment._default_manager.filter(Q(**{where.owner: user}) | Q(pk__in=members))


def _through(model: type[models.Model], path: str) -> tuple[type[models.Model], str, str] | None:
    """For a many-to-many path: its table, and its columns naming the row and the environment."""
    relation = model._meta.get_field(path)
    if isinstance(relation, models.ManyToManyRel):  # declared on the environment's side
        field = relation.field
        return relation.through, field.m2m_reverse_field_name(), field.m2m_field_name()
    if isinstance(relation, models.ManyToManyField):
        return (
            relation.remote_field.through,
            relation.m2m_field_name(),
            relation.m2m_reverse_field_name(),
        )
    return None


def _granted(model: type[models.Model], user: Any, action: str) -> Q:
    """The rows ``action`` is granted on, for a user who does not see all."""
    policy = policy_for(model)
    path = policy.environments
    owned = Q(**{policy.owner: user})
    if policy.personal and path:
        owned &= Q(**{f"{path}__isnull": True})
    roles = policy.roles.get(action, ())
    if not roles or path is None:
        return owned
    environments = environments_of(user, roles)
    if path == "self":
        return Q(pk__in=environments.values("pk"))
    m2m = _through(model, path)
    if m2m is None:  # a foreign key
        return owned | Q(**{f"{path}__in": environments})
    through, row, environment = m2m
    shared = through._default_manager.filter(**{f"{environment}__in": environments})
    return owned | Q(pk__in=shared.values(f"{row}_id"))


def restrict(queryset: models.QuerySet, user: Any, action: str = VIEW) -> models.QuerySet:
    """The rows of ``queryset`` that ``user`` may ``action``."""
    if not active(user):
        return queryset.none()
    model = queryset.model
    if sees_all(user, model, action):
        return queryset
    return queryset.filter(_where(model, user, action))


def _where(model: type[models.Model], user: Any, action: str) -> Q:
    """The condition on ``model``'s rows, for a user who does not see all of them."""
    granted = _granted(model, user, action)
    if _holds_permission(model, user, action):
        granted |= _granted(model, user, VIEW)
    return granted


def _holds_permission(model: type[models.Model], user: Any, action: str) -> bool:
    """Whether a global permission grants ``action`` to ``user`` (Django's ``has_perm``: every
    authentication backend answers, and the user object keeps the answer for the request)."""
    permission = policy_for(model).permissions.get(action)
    return bool(permission) and user.has_perm(permission)


def may(user: Any, obj: models.Model, action: str = VIEW) -> bool:
    """Whether ``user`` may ``action`` this one object."""
    if obj is None or obj.pk is None or not active(user):
        return False
    model = type(obj)
    if sees_all(user, model, action):
        return True
    policy = policy_for(model)
    owner_id = getattr(obj, f"{policy.owner}_id", None)
    if owner_id == user.pk and not (
        policy.personal and getattr(obj, f"{policy.environments}_id", None) is not None
    ):
        return True
    manager = model._meta.concrete_model._base_manager
    return restrict(manager.all(), user, action).filter(pk=obj.pk).exists()


def ids(user: Any, queryset: models.QuerySet, pks: Iterable[int], action: str = VIEW) -> set[int]:
    """Which of ``pks`` ``user`` may ``action`` (one query for a page or a batch)."""
    return ids_by_action(user, queryset, pks, (action,))[action]


def ids_by_action(
    user: Any, queryset: models.QuerySet, pks: Iterable[int], actions: Iterable[str]
) -> dict[str, set[int]]:
    """For each of ``actions``, which of ``pks`` ``user`` may take it on: one query for them all
    (a table page's menus and its edit links)."""
    pks, actions = list(pks), list(actions)
    result: dict[str, set[int]] = {action: set() for action in actions}
    if not pks or not active(user):
        return result
    asked = []
    for action in actions:
        if sees_all(user, queryset.model, action):
            result[action] = set(pks)
        else:
            asked.append(action)
    if asked:
        # actions granted alike (the same roles, the same global permission) share one flag
        model, flags, flag_of = queryset.model, {}, {}
        for action in asked:
            alike = (
                policy_for(model).roles.get(action, ()),
                _holds_permission(model, user, action),
            )
            if alike not in flags:
                flags[alike] = ExpressionWrapper(_where(model, user, action), BooleanField())
            flag_of[action] = list(flags).index(alike)
        names = {f"may_{i}": flag for i, flag in enumerate(flags.values())}
        rows = queryset.filter(pk__in=pks).annotate(**names).values_list("pk", *names)
        for pk, *granted in rows:
            for action in asked:
                if granted[flag_of[action]]:
                    result[action].add(pk)
    return result


class RestrictedQuerySet(models.QuerySet):
    """A queryset whose ``restrict()`` asks the model's registered policy."""

    def restrict(self, user: Any, action: str = VIEW) -> models.QuerySet:
        return restrict(self, user, action)
