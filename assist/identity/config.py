"""``IdentityConfig``: sign-in through a company directory (LDAP / Active Directory) or an OpenID
Connect provider. Each field with help text is a flag, a ``DCU_CHAT_*`` variable and a TOML key
(``app_settings`` derives them). Setting ``ldap_url`` or ``oidc_issuer`` turns sign-in on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from assist.identity.errors import IdentityConfigError

__all__ = ["IdentityConfig", "USERNAME"]

USERNAME = "{username}"  # where the typed user name goes in --ldap-user-dn and --ldap-user-filter


@dataclass(frozen=True)
class IdentityConfig:
    ldap_url: str | None = field(default=None, metadata={
        "help": "LDAP / Active Directory server for sign-in at /login: ldap://host[:port] or ldaps://host "
                "(turns sign-in on; local users still sign in)"})
    ldap_user_dn: str | None = field(default=None, metadata={
        "help": "bind as the user through this DN template, e.g. 'uid={username},ou=people,dc=example,dc=org'"})
    ldap_bind_dn: str | None = field(default=None, metadata={
        "help": "service account that searches for the user (search-then-bind; else an anonymous search)"})
    ldap_bind_password: str | None = field(default=None, metadata={
        "help": "the service account's password (better: DCU_CHAT_LDAP_BIND_PASSWORD)", "secret": True})
    ldap_user_base: str | None = field(default=None, metadata={
        "help": "where to search for users, e.g. 'ou=people,dc=example,dc=org' (search-then-bind)"})
    ldap_user_filter: str = field(default="(uid={username})", metadata={
        "help": "the search for one user; AD: '(sAMAccountName={username})'"})
    ldap_group_base: str | None = field(default=None, metadata={
        "help": "where groups live (groupOfNames / member); memberOf on the user counts too"})
    ldap_admin_group: str | None = field(default=None, metadata={
        "help": "members of this directory group (its cn or DN) are admins"})
    ldap_start_tls: bool = field(default=False, metadata={
        "help": "upgrade an ldap:// connection with StartTLS before sending any password"})
    ldap_ca_file: str | None = field(default=None, metadata={
        "help": "PEM file of the CA that signed the directory's certificate (ldaps:// and StartTLS)"})
    ldap_timeout_s: float = field(default=5.0, metadata={
        "help": "seconds to wait for the directory before saying it is down"})
    oidc_issuer: str | None = field(default=None, metadata={
        "help": "OpenID Connect provider (its issuer URL; discovery from /.well-known/openid-configuration): "
                "adds 'Sign in with ...' to /login and turns sign-in on"})
    oidc_client_id: str | None = field(default=None, metadata={"help": "this server's client id at the provider"})
    oidc_client_secret: str | None = field(default=None, metadata={
        "help": "this server's client secret (better: DCU_CHAT_OIDC_CLIENT_SECRET)", "secret": True})
    oidc_scopes: str = field(default="openid email profile", metadata={"help": "scopes asked for"})
    oidc_name: str | None = field(default=None, metadata={
        "help": "the provider's name on the sign-in button: 'Sign in with NAME' (default: the issuer's host)"})
    oidc_username_claim: str = field(default="preferred_username", metadata={
        "help": "claim that names the user (then email, then sub)"})
    oidc_groups_claim: str = field(default="groups", metadata={"help": "claim that lists the user's groups"})
    oidc_admin_group: str | None = field(default=None, metadata={"help": "members of this group are admins"})
    oidc_redirect_uri: str | None = field(default=None, metadata={
        "help": "the callback URL registered at the provider (default: /login/oidc/callback on the "
                "address the browser used)"})

    def __post_init__(self) -> None:
        if self.ldap_url:
            self._check_ldap()
        if self.oidc_issuer:
            self._check_oidc()

    @property
    def ldap_enabled(self) -> bool:
        return bool(self.ldap_url)

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    def _check_ldap(self) -> None:
        scheme = urlparse(self.ldap_url).scheme.lower()
        if scheme not in ("ldap", "ldaps"):
            raise IdentityConfigError(f"--ldap-url must start with ldap:// or ldaps:// (got {self.ldap_url!r}).")
        if scheme == "ldaps" and self.ldap_start_tls:
            raise IdentityConfigError("--ldap-start-tls is for ldap:// URLs; ldaps:// is encrypted already.")
        if not self.ldap_user_dn and not self.ldap_user_base:
            raise IdentityConfigError("With --ldap-url, give --ldap-user-dn (a DN template with {username}) or "
                                      "--ldap-user-base (search-then-bind, with --ldap-bind-dn).")
        if self.ldap_user_dn and USERNAME not in self.ldap_user_dn:
            raise IdentityConfigError("--ldap-user-dn must contain {username}, e.g. "
                                      "'uid={username},ou=people,dc=example,dc=org'.")
        if not self.ldap_user_dn and USERNAME not in self.ldap_user_filter:
            raise IdentityConfigError("--ldap-user-filter must contain {username}, e.g. '(uid={username})'.")
        if bool(self.ldap_bind_dn) != bool(self.ldap_bind_password):
            raise IdentityConfigError("--ldap-bind-dn and --ldap-bind-password go together (the directory "
                                      "would take an empty password as an anonymous bind).")
        if self.ldap_timeout_s <= 0:
            raise IdentityConfigError("--ldap-timeout-s must be more than 0.")

    def _check_oidc(self) -> None:
        issuer = urlparse(self.oidc_issuer)
        loopback = issuer.hostname in ("localhost", "::1") or (issuer.hostname or "").startswith("127.")
        if not issuer.hostname or not (issuer.scheme == "https" or (issuer.scheme == "http" and loopback)):
            raise IdentityConfigError(f"--oidc-issuer must be an https:// URL (http:// only for a provider on "
                                      f"this machine); got {self.oidc_issuer!r}.")
        if not self.oidc_client_id:
            raise IdentityConfigError("With --oidc-issuer, give --oidc-client-id (this server's id at the provider).")
        if "openid" not in self.oidc_scopes.split():
            raise IdentityConfigError(f"--oidc-scopes must include openid (got {self.oidc_scopes!r}).")

    @property
    def provider_name(self) -> str:
        return self.oidc_name or urlparse(self.oidc_issuer or "").hostname or "single sign-on"
