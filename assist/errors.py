"""Exceptions of the use-case layer, with messages written for the person at the screen.

Like ``engine.errors`` and ``rag.errors``, they become ``gr.Error`` / HTTP errors only at the
web edge (``webui/adapters.py``), which reads ``http_status``.
"""

from __future__ import annotations

__all__ = ["AssistError", "SessionError", "SessionNotFound", "InvalidImport", "UserError", "UnknownUser",
           "NotAuthenticated", "TooManyAttempts", "JobNotFound", "TooManyJobs",
           "AccessError", "NoSuchCollection", "NotAllowed", "CollectionNameTaken", "InvalidSharing", "QuotaExceeded",
           "SandboxError", "SandboxOff", "SandboxUnavailable", "SandboxBusy", "SyncError", "SyncOff",
           "NotFollowing"]


class AssistError(Exception):
    """Base class: ``str(err)`` is a complete sentence a user can act on."""

    http_status = 500


class SessionError(AssistError):
    """A saved conversation cannot be used as asked."""

    http_status = 400


class SessionNotFound(SessionError):
    """No conversation with this id belongs to the current user (it may have been deleted)."""

    http_status = 404


class InvalidImport(SessionError):
    """An imported conversation file is not valid; the message says what to fix."""


class UserError(AssistError):
    """A user, password or token cannot be used as asked (bad name, short password, duplicate)."""

    http_status = 400


class UnknownUser(UserError):
    """No such user or token (for tokens: none of the caller's)."""

    http_status = 404


class NotAuthenticated(AssistError):
    """The server needs sign-in and the request has no valid credentials."""

    http_status = 401


class TooManyAttempts(AssistError):
    """Too many failed sign-ins for this name or address; ``retry_after`` says when to try again."""

    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobNotFound(AssistError):
    """No upload job with this id belongs to the caller."""

    http_status = 404


class AccessError(AssistError):
    """A collection cannot be used as asked by this user."""

    http_status = 400


class NoSuchCollection(AccessError):
    """No collection of this name is visible to the user: missing, or someone else's and not shared.

    Both cases read the same, so names of private collections do not leak.
    """

    http_status = 404


class TooManyJobs(AssistError):
    """Too many uploads are waiting to be indexed."""

    http_status = 429


class NotAllowed(AccessError):
    """The user sees the collection (it is shared with them) but may not do this to it."""

    http_status = 403


class CollectionNameTaken(AccessError):
    """The user already has a collection of this name."""

    http_status = 409


class InvalidSharing(AccessError):
    """A sharing request names an unknown mode or an unusable user name."""


class QuotaExceeded(AssistError):
    """A per-user limit (tokens per day, requests at once) is reached; ``retry_after`` in seconds."""

    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SandboxError(AssistError):
    """Code cannot be run in the sandbox as asked (unknown language, code or input too large)."""

    http_status = 400


class SandboxOff(SandboxError):
    """The server was started without ``--sandbox``: running code is the admin's choice."""

    http_status = 403


class SandboxUnavailable(SandboxError):
    """The sandbox is on but cannot work here (bubblewrap missing, namespaces refused)."""

    http_status = 503


class SandboxBusy(SandboxError):
    """As many programs as the sandbox allows at once are running; ``retry_after`` in seconds."""

    http_status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SyncError(AssistError):
    """A folder cannot be followed as asked (outside the sync root, missing, bad [[sync]] table)."""

    http_status = 400


class SyncOff(SyncError):
    """The server was started without ``--sync-root``: following folders is the admin's choice."""

    http_status = 403


class NotFollowing(SyncError):
    """The collection follows no folder."""

    http_status = 404
