"""Passwords checked by the company directory (LDAP / Active Directory) through ``ldap3``.

The password is checked by binding as the user, never compared here: either the DN comes from a
template (``--ldap-user-dn "uid={username},ou=people,dc=example,dc=org"``), or a service account
(or an anonymous search, when none is given) finds the user's entry with ``--ldap-user-filter``
under ``--ldap-user-base`` and then we bind as that entry (search-then-bind). The typed name is
escaped for where it goes (``escape_rdn`` in a DN, ``escape_filter_chars`` in a filter), so
``*)(uid=*`` is a name like any other and finds nobody. An empty password never reaches the
directory: LDAP takes a simple bind without a password as an anonymous bind, which proves nothing.

Groups: ``groupOfNames`` (``member``) / ``groupOfUniqueNames`` (``uniqueMember``) entries under
``--ldap-group-base`` that list the user's DN, plus the user's ``memberOf`` values (only those
under the group base when one is set); each group is known by its ``cn``. A directory that cannot
be reached, or a TLS connection that cannot be secured, raises ``DirectoryDown`` (503) after at
most ``--ldap-timeout-s`` per step; the caller's local users are not affected.
"""

from __future__ import annotations

import logging
import math
import ssl
from dataclasses import dataclass

from ldap3 import ANONYMOUS, BASE, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPCommunicationError, LDAPException, LDAPStartTLSError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from assist.identity.config import USERNAME, IdentityConfig
from assist.identity.errors import DirectoryDown, SignInFailed
from assist.identity.groups import clean_groups

__all__ = ["LdapDirectory", "DirectoryUser", "user_dn_for", "user_filter_for"]

log = logging.getLogger(__name__)

_NAME_ATTRIBUTES = ("uid", "sAMAccountName", "userPrincipalName")


@dataclass(frozen=True)
class DirectoryUser:
    name: str  # as the directory spells it (uid / sAMAccountName), else as typed
    dn: str
    groups: tuple[str, ...]


def user_dn_for(template: str, name: str) -> str:
    """The DN of ``name`` from a ``{username}`` template; the name escaped as an RDN value."""
    return template.replace(USERNAME, escape_rdn(name))


def user_filter_for(template: str, name: str) -> str:
    """The search filter for ``name``; the name escaped so it can only be a literal value."""
    return template.replace(USERNAME, escape_filter_chars(name))


def _norm_dn(dn: str) -> tuple[tuple[str, str], ...]:
    try:
        return tuple((attr.strip().lower(), value.strip().lower()) for attr, value, _ in parse_dn(dn))
    except LDAPException:
        return ()


def _first_rdn_value(dn: str) -> str | None:
    """``Admins`` of ``cn=Admins,ou=groups,...``."""
    try:
        parts = parse_dn(dn)
    except LDAPException:
        return None
    return parts[0][1].strip() if parts else None


def _under(dn: str, base: str) -> bool:
    child, parent = _norm_dn(dn), _norm_dn(base)
    return bool(parent) and len(child) > len(parent) and child[-len(parent):] == parent


def _values(attributes: dict, name: str) -> list[str]:
    for key, value in attributes.items():
        if key.lower() == name.lower():
            values = value if isinstance(value, list) else [value]
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
    return []


def _entries(conn: Connection) -> list[dict]:
    return [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]


class LdapDirectory:
    """Checks passwords and reads groups in the directory of ``config`` (see module doc)."""

    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        timeout = config.ldap_timeout_s
        self._wait_s = max(1, math.ceil(timeout))  # ldap3 sets the socket's receive timeout in whole seconds
        self._admin = config.ldap_admin_group
        if self._admin and "=" in self._admin:  # a DN: groups are known by their cn
            self._admin = _first_rdn_value(self._admin) or self._admin

    @property
    def admin_group(self) -> str | None:
        return self._admin

    def describe(self) -> str:
        how = "DN template" if self.config.ldap_user_dn else "search-then-bind"
        tls = " with StartTLS" if self.config.ldap_start_tls else ""
        return f"LDAP {self.config.ldap_url}{tls} ({how})"

    def authenticate(self, name: str, password: str) -> DirectoryUser:
        """The directory user ``name`` when ``password`` binds as them; else ``SignInFailed``."""
        name = (name or "").strip()
        if not name:
            raise SignInFailed("unknown user", source="ldap")
        if not password:  # an anonymous bind in LDAP's eyes: never a sign-in
            raise SignInFailed("empty password", source="ldap")
        try:
            return self._authenticate(name, password)
        except (LDAPStartTLSError, LDAPCommunicationError, ssl.SSLError, OSError) as exc:
            log.warning("LDAP directory %s: %s", self.config.ldap_url, exc)
            if isinstance(exc, (LDAPStartTLSError, ssl.SSLError)) or "ssl" in str(exc).lower():
                raise DirectoryDown(f"The connection to the company directory ({self.config.ldap_url}) could not "
                                    "be secured (its certificate was not trusted or TLS failed); check "
                                    "--ldap-ca-file. Local accounts still sign in.") from exc
            raise DirectoryDown(f"The company directory ({self.config.ldap_url}) cannot be reached right now; "
                                "try again in a few minutes. Local accounts still sign in.") from exc

    def _server(self) -> Server:
        # A new Server each time: ldap3 marks an address it failed to reach as unavailable for good,
        # so a directory that was down for a minute would stay "down" here until a restart.
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.config.ldap_ca_file or None)
        return Server(self.config.ldap_url, tls=tls, connect_timeout=self.config.ldap_timeout_s, get_info=NONE)

    def _connect(self, dn: str | None, password: str | None) -> tuple[Connection, bool]:
        conn = Connection(self._server(), user=dn, password=password, authentication=SIMPLE if dn else ANONYMOUS,
                          receive_timeout=self._wait_s, raise_exceptions=False, read_only=True,
                          auto_referrals=False)
        conn.open()
        if self.config.ldap_start_tls and not conn.start_tls():
            conn.unbind()
            raise LDAPStartTLSError(conn.result.get("description") or "StartTLS refused")
        return conn, bool(conn.bind())

    def _authenticate(self, name: str, password: str) -> DirectoryUser:
        service: Connection | None = None
        try:
            if self.config.ldap_user_dn:
                dn, attributes, known = user_dn_for(self.config.ldap_user_dn, name), None, False
            else:
                service, ok = self._connect(self.config.ldap_bind_dn, self.config.ldap_bind_password)
                if not ok:
                    raise DirectoryDown("The company directory refused the service account (--ldap-bind-dn); "
                                        "tell the administrator. Local accounts still sign in.")
                dn, attributes = self._find(service, name)
                known = True
            user, ok = self._connect(dn, password)
            try:
                if not ok:
                    raise SignInFailed("bad password" if known else "bad password or unknown user", source="ldap")
                reader = service or user
                if attributes is None:  # DN template: read the entry as the user
                    attributes = self._read(user, dn)
                return DirectoryUser(self._canonical(name, attributes), dn, self._groups(reader, dn, attributes))
            finally:
                user.unbind()
        finally:
            if service is not None:
                service.unbind()

    def _find(self, service: Connection, name: str) -> tuple[str, dict]:
        flt = user_filter_for(self.config.ldap_user_filter, name)
        service.search(self.config.ldap_user_base, flt, SUBTREE, attributes=[*_NAME_ATTRIBUTES, "memberOf"],
                       size_limit=2, time_limit=self._wait_s)
        found = _entries(service)
        if not found:
            raise SignInFailed("unknown user", source="ldap")
        if len(found) > 1:  # the filter is too broad: refuse rather than pick one
            raise SignInFailed("ambiguous user", source="ldap")
        return found[0]["dn"], found[0].get("attributes") or {}

    def _read(self, conn: Connection, dn: str) -> dict:
        conn.search(dn, "(objectClass=*)", BASE, attributes=[*_NAME_ATTRIBUTES, "memberOf"])
        found = _entries(conn)
        return (found[0].get("attributes") or {}) if found else {}

    @staticmethod
    def _canonical(typed: str, attributes: dict) -> str:
        """The directory's spelling of the typed name (directories compare names without case)."""
        for attribute in _NAME_ATTRIBUTES:
            for value in _values(attributes, attribute):
                if value.casefold() == typed.casefold():
                    return value
        return typed

    def _groups(self, conn: Connection, dn: str, attributes: dict) -> tuple[str, ...]:
        base = self.config.ldap_group_base
        names = [_first_rdn_value(g) for g in _values(attributes, "memberOf") if not base or _under(g, base)]
        if base:
            member = escape_filter_chars(dn)
            conn.search(base, f"(|(member={member})(uniqueMember={member}))", SUBTREE, attributes=["cn"],
                        size_limit=1000, time_limit=self._wait_s)
            for entry in _entries(conn):
                names.extend(_values(entry.get("attributes") or {}, "cn")[:1] or [_first_rdn_value(entry["dn"])])
        return clean_groups(names)
