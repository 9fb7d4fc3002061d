"""Sign-in errors of company directories and providers, with messages for the person at the screen.

``reason`` is the short, secret-free cause the audit log records (``bad password``, ``unknown
user``, ``directory down``, ``invalid token``, ``conflict``, ...); the message never says more
than the person may know (a wrong password and an unknown name read the same).
"""

from __future__ import annotations

from assist.errors import AssistError

__all__ = ["IdentityError", "IdentityConfigError", "SignInFailed", "InvalidToken", "SignInConflict",
           "DirectoryDown", "ProviderUnavailable", "WRONG_PASSWORD"]

WRONG_PASSWORD = "Wrong user name or password."


class IdentityError(AssistError):
    """Base class of sign-in through LDAP / Active Directory or OpenID Connect."""

    http_status = 400
    reason = "error"
    source: str | None = None  # local, ldap or oidc: which way of signing in failed (for the audit log)


class IdentityConfigError(IdentityError):
    """The --ldap-* or --oidc-* settings cannot work as given; the message says which to fix."""


class SignInFailed(IdentityError):
    """Wrong credentials; ``reason`` tells the audit log why, the message does not tell the caller."""

    http_status = 401

    def __init__(self, reason: str, message: str = WRONG_PASSWORD, source: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.source = reason, source


class InvalidToken(SignInFailed):
    """The provider's answer failed a check (state, code, ID token signature, iss, aud, exp, nonce).

    400: the callback request itself is unusable (401 would promise a WWW-Authenticate challenge)."""

    http_status = 400

    def __init__(self, detail: str, reason: str = "invalid token") -> None:
        super().__init__(reason, "The sign-in with your company account could not be verified "
                                 f"({detail}); please sign in again.", source="oidc")
        self.detail = detail


class SignInConflict(IdentityError):
    """A name that belongs to an account of another kind here (local vs directory vs provider)."""

    http_status = 409
    reason = "conflict"

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


class DirectoryDown(IdentityError):
    """The LDAP / Active Directory server cannot be reached (or refused the service account)."""

    http_status = 503
    reason = "directory down"
    source = "ldap"


class ProviderUnavailable(IdentityError):
    """The OpenID provider cannot be reached or answered something unusable."""

    http_status = 503
    reason = "provider down"
    source = "oidc"
