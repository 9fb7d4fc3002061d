"""Groups of users that come from outside: names, the admin rule, and sharing grantees.

A directory group is known here by its name (an LDAP group's ``cn``, an OpenID provider's
``groups`` claim value as sent). A collection shared with ``group:NAME`` reaches every user whose
last sign-in listed NAME: membership follows the directory at each sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["GROUP_PREFIX", "clean_groups", "is_member", "role_for", "grantee", "group_of_grantee"]

GROUP_PREFIX = "group:"
_MAX_GROUPS = 500  # a user in more groups than this is cut off (and it is logged nowhere secret)
_MAX_NAME = 256


def clean_groups(names: Iterable[object]) -> tuple[str, ...]:
    """Distinct, non-empty group names (text only), sorted; at most a few hundred."""
    found = {str(n).strip() for n in names if isinstance(n, str) and n.strip()}
    return tuple(sorted(n for n in found if len(n) <= _MAX_NAME and n != "*"))[:_MAX_GROUPS]


def is_member(groups: Iterable[str], group: str | None) -> bool:
    """Whether ``group`` (compared without regard to case, as directories do) is among ``groups``."""
    if not group:
        return False
    wanted = group.strip().casefold()
    return any(g.casefold() == wanted for g in groups)


def role_for(groups: Iterable[str], admin_group: str | None) -> str:
    return "admin" if is_member(groups, admin_group) else "user"


def grantee(group: str) -> str:
    """How sharing stores a group: ``group:NAME``."""
    return GROUP_PREFIX + group


def group_of_grantee(name: str) -> str | None:
    """NAME of ``group:NAME``; None for a user name."""
    return name[len(GROUP_PREFIX):] if name.startswith(GROUP_PREFIX) else None
