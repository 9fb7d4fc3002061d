"""Who a sign-in is: local users first, then the company directory; provider identities made users.

``Identity.password_sign_in`` serves ``POST /login``: a local user's password is checked here
(argon2), any other name goes to the directory when one is configured. A name that is a local
user here and a directory user there never merges: when the local password fails and the
directory accepts the same name and password, the answer says so (``SignInConflict``) instead of
a bare "wrong password". ``Identity.outside_sign_in`` serves the OpenID callback. Each success
says its ``source`` (``local``, ``ldap``, ``oidc``) for the audit log; each failure carries a
``reason`` (``bad password``, ``unknown user``, ``directory down``, ``invalid token``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from assist.errors import UserError
from assist.identity.config import IdentityConfig
from assist.identity.errors import DirectoryDown, SignInConflict, SignInFailed
from assist.identity.groups import role_for
from assist.users import User, UserStore

__all__ = ["Identity", "SignIn", "build_identity"]


@dataclass(frozen=True)
class SignIn:
    user: User
    source: str  # local, ldap or oidc
    groups: tuple[str, ...] = ()


class Identity:
    """The sign-in sources of one server: the users file, and optionally a directory and a provider."""

    def __init__(self, users: UserStore, config: IdentityConfig | None = None, ldap=None, oidc=None) -> None:
        self.users, self.config = users, config or IdentityConfig()
        self.ldap = ldap  # assist.identity.ldap.LdapDirectory, or None
        self.oidc = oidc  # assist.identity.oidc.OidcProvider, or None

    @property
    def enabled(self) -> bool:
        """A directory or a provider is configured: that alone turns sign-in on."""
        return self.ldap is not None or self.oidc is not None

    def password_sign_in(self, name: str, password: str) -> SignIn:
        """The user for ``name`` / ``password`` (see module doc); raises ``SignInFailed`` and the like."""
        name = (name or "").strip()
        source = self.users.source_of(name) if name else None
        if source in ("local", "command line") or self.ldap is None:
            user = self.users.authenticate(name, password)
            if user is not None:
                return SignIn(user, "local")
            if source is None:
                raise SignInFailed("unknown user", source="local")
            if source not in ("local", "command line"):  # a directory user, and no directory now
                raise SignInFailed(f"{source} user without {source}", source="local")
            if self.ldap is None or not password:
                raise SignInFailed("bad password", source="local")
            self._refuse_a_directory_twin(name, password)
        found = self.ldap.authenticate(name, password)  # SignInFailed, DirectoryDown
        return self.outside_sign_in("ldap", found.name, found.groups, self.ldap.admin_group)

    def _refuse_a_directory_twin(self, name: str, password: str) -> None:
        """A local name whose password failed: if the directory takes it, say why it cannot sign in."""
        try:
            found = self.ldap.authenticate(name, password)
        except (SignInFailed, DirectoryDown):
            raise SignInFailed("bad password", source="local") from None
        raise SignInConflict(f"{found.name} is a local account on this server, so your directory account of "
                             "the same name cannot sign in as it. Ask an administrator to rename or remove one "
                             "of them.", source="ldap")

    def outside_sign_in(self, source: str, name: str, groups: tuple[str, ...], admin_group: str | None,
                        external_id: str = "") -> SignIn:
        """Create or refresh the ``source`` user ``name`` with ``groups``; admin when in ``admin_group``."""
        try:
            user = self.users.sign_in_from_outside(name, source, groups, role_for(groups, admin_group), external_id)
        except UserError as exc:  # a name this server cannot use (spaces, too long, 'local')
            raise SignInFailed("unusable name", f"Your {source} account's name cannot be used here ({exc}) "
                                                "Ask an administrator.", source=source) from exc
        return SignIn(user, source, groups)


def build_identity(users: UserStore, config: IdentityConfig) -> Identity:
    """The configured sources; ldap3 and authlib are imported only when a source needs them."""
    ldap = oidc = None
    if config.ldap_enabled:
        from assist.identity.ldap import LdapDirectory

        ldap = LdapDirectory(config)
    if config.oidc_enabled:
        from assist.identity.oidc import OidcProvider

        oidc = OidcProvider(config)
    return Identity(users, config, ldap, oidc)
