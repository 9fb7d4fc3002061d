"""Document collections as one user sees them: the store's operations behind ownership checks.

The REST routes and the Docs tab call this, never ``rag.store`` directly, so one place decides
who may do what (``assist.access`` holds the table). A user refers to their own collections by
name and to one shared with them as ``owner:name``. Every user has their own ``default``,
created on first use; the local user (no login configured) owns the store's collections under
their own names, so a server without auth keeps its ``default`` and everything made before.

What a user may not see reads exactly like what does not exist ("There is no collection named
..."), so names of other users' collections do not leak; a collection shared read-only answers
``NotAllowed`` (403) to writes, since its reader knows it exists.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence

from assist.access import EVERYONE, CollectionAccess, Grant, Sharing
from assist.errors import CollectionNameTaken, InvalidSharing, NoSuchCollection, NotAllowed
from assist.sessions import LOCAL_OWNER
from rag.errors import CollectionNotFound, DocumentNotFound, InvalidName
from rag.store import DEFAULT_COLLECTION, AddResult, DocumentInfo, DocumentStore, check_collection_name

__all__ = ["UserCollections", "Audit", "LOCAL_OWNER"]

_GENERATED = re.compile(r"u-[0-9a-f]{20}")
_NEEDS = {"read": ("read", "write", "owner"), "write": ("write", "owner"), "owner": ("owner",)}

Audit = Callable[..., object]  # audit(event, actor, **details), e.g. AuditLog.record: sharing and deletion
Groups = Callable[[str], Iterable[str]]  # a user's groups, e.g. UserStore.groups_of (for group:NAME shares)


class UserCollections:
    """``store``'s collections filtered and checked through ``access`` for each user."""

    def __init__(self, store: DocumentStore, access: CollectionAccess, audit: Audit | None = None,
                 groups: Groups | None = None) -> None:
        self.store = store
        self.access = access
        self.audit = audit
        self._groups = groups or (lambda user: ())

    # -- which collection a name means -----------------------------------------------------

    def resolve(self, user: str, ref: str | None, need: str = "read") -> Grant:
        """The collection ``ref`` (``name`` or ``owner:name``) as ``user`` may use it for ``need``
        (read, write or owner); ``NoSuchCollection`` when they may not see it at all."""
        ref = (ref or DEFAULT_COLLECTION).strip()
        owner, sep, name = ref.partition(":")
        if not sep:
            owner, name = user, ref
        grant = self._own(user, name) if owner == user else self.access.shared(user, owner, name, self._groups(user))
        if grant is None:
            raise NoSuchCollection(f"There is no collection named {ref!r}.")
        if grant.mode not in _NEEDS[need]:
            label = grant.label(user)
            if need == "write":
                raise NotAllowed(f"The collection {label!r} is shared with you read-only; ask {grant.owner} "
                                 "for write access.")
            raise NotAllowed(f"Only its owner, {grant.owner}, can delete or share the collection {label!r}.")
        return grant

    def _own(self, user: str, name: str) -> Grant | None:
        grant = self.access.own(user, name)
        if grant is None and user == LOCAL_OWNER:
            self._adopt()
            grant = self.access.own(user, name)
        if grant is None and name == DEFAULT_COLLECTION:
            grant = self._create(user, DEFAULT_COLLECTION, exist_ok=True)
        return grant

    def _adopt(self) -> None:
        """Collections in the store that nobody owns (made before ownership, or by a tool) are the local user's."""
        known = self.access.registered()
        for storage in self.store.list_collections():
            if storage not in known and not _GENERATED.fullmatch(storage):
                try:
                    self.access.register(LOCAL_OWNER, storage, storage)
                except CollectionNameTaken:
                    pass  # registered meanwhile by another thread

    def _create(self, user: str, name: str, exist_ok: bool = False) -> Grant:
        check_collection_name(name)
        taken = set(self.store.list_collections()) | self.access.registered()
        storage = name if user == LOCAL_OWNER and name not in taken else f"u-{uuid.uuid4().hex[:20]}"
        try:
            grant = self.access.register(user, name, storage)  # before the files: never an orphan
        except CollectionNameTaken:
            existing = self.access.own(user, name)
            if exist_ok and existing is not None:
                return existing
            raise
        try:
            self.store.create_collection(storage, exist_ok=exist_ok)
        except BaseException:
            self.access.forget(storage)
            raise
        return grant

    # -- collections -----------------------------------------------------------------------

    def list(self, user: str) -> list[tuple[Grant, int]]:
        """``(grant, number of documents)`` of every collection ``user`` may see, their ``default`` first."""
        self._own(user, DEFAULT_COLLECTION)
        if user == LOCAL_OWNER:
            self._adopt()
        out = []
        for grant in self.access.visible(user, self._groups(user)):
            try:
                out.append((grant, len(self.store.list_documents(grant.storage))))
            except CollectionNotFound:
                continue  # deleted by its owner a moment ago
        return sorted(out, key=lambda item: (item[0].owner != user, item[0].name != DEFAULT_COLLECTION,
                                             item[0].owner, item[0].name))

    def label_of(self, user: str, storage: str) -> str:
        """How ``user`` names the collection stored as ``storage`` (e.g. in an upload job's report)."""
        known = self.access.by_storage(storage)
        if known is None:
            return storage
        return Grant(storage, known[0], known[1], "read").label(user)

    def labels(self, user: str) -> list[str]:
        return [grant.label(user) for grant, _ in self.list(user)]

    def create(self, user: str, name: str) -> Grant:
        if user == LOCAL_OWNER:
            self._adopt()
        if self.access.own(user, name) is not None:
            raise CollectionNameTaken(f"A collection named {name!r} already exists.")
        return self._create(user, name)

    def delete(self, user: str, ref: str) -> Grant:
        grant = self.resolve(user, ref, "owner")
        if grant.name == DEFAULT_COLLECTION:
            raise InvalidName("The default collection cannot be deleted.")
        try:
            self.store.delete_collection(grant.storage)
        except CollectionNotFound:
            pass  # the files are gone already: forget it all the same
        self.access.forget(grant.storage)
        self._record("collection.deleted", user, collection=grant.name)
        return grant

    def sharing(self, user: str, ref: str) -> Sharing:
        return self.access.sharing(self.resolve(user, ref, "owner").storage)

    def share(self, user: str, ref: str, users: Sequence[str] = (), everyone: bool = False,
              mode: str = "read") -> Sharing:
        """Replace who else may use ``ref``: the named ``users`` and/or ``everyone``, all in ``mode``."""
        grant = self.resolve(user, ref, "owner")
        names = sorted({str(u).strip() for u in users if str(u).strip() and str(u).strip() != user})
        if EVERYONE in names:
            raise InvalidSharing("Use \"all\": true to share with everyone, not the user name '*'.")
        result = self.access.set_sharing(grant.storage, mode if everyone else None, dict.fromkeys(names, mode))
        self._record("collection.shared", user, collection=grant.name, users=names, all=bool(everyone), mode=mode)
        return result

    # -- documents -------------------------------------------------------------------------

    def documents(self, user: str, ref: str) -> list[DocumentInfo]:
        grant = self.resolve(user, ref)
        return self._store(grant, user, self.store.list_documents, grant.storage)

    def document(self, user: str, ref: str, document_id: str) -> DocumentInfo:
        grant = self.resolve(user, ref)
        return self._store(grant, user, self.store.get_document, grant.storage, document_id)

    def add_files(self, user: str, ref: str, files: Sequence[tuple[str, bytes]], progress=None) -> AddResult:
        grant = self.resolve(user, ref, "write")
        return self._store(grant, user, self.store.add_files, grant.storage, files, progress)

    def delete_document(self, user: str, ref: str, document_id: str) -> DocumentInfo:
        grant = self.resolve(user, ref, "write")
        info = self._store(grant, user, self.store.get_document, grant.storage, document_id)
        self._store(grant, user, self.store.delete_document, grant.storage, document_id)
        self._record("document.deleted", user, collection=grant.label(user), document=info.name)
        return info

    def search(self, user: str, ref: str, query: str, top_k: int | None = None):
        grant = self.resolve(user, ref)
        return self._store(grant, user, self.store.search, grant.storage, query, top_k=top_k)

    # -- usage (admins see counts, never content) -------------------------------------------

    def usage(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for owner in self.access.counts_by_owner():
            documents = 0
            storages = self.access.storages_of(owner)
            for storage in storages:
                try:
                    documents += len(self.store.list_documents(storage))
                except CollectionNotFound:
                    continue
            out[owner] = {"collections": len(storages), "documents": documents}
        return out

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _store(grant: Grant, user: str, call, *args, **kwargs):
        """Run a store call; its errors name the collection as the user knows it, not its storage."""
        label = grant.label(user)
        try:
            return call(*args, **kwargs)
        except CollectionNotFound as exc:
            raise NoSuchCollection(f"There is no collection named {label!r}.") from exc
        except DocumentNotFound as exc:
            document_id = args[1] if len(args) > 1 else ""
            raise DocumentNotFound(f"There is no document {document_id!r} in collection {label!r}.") from exc

    def _record(self, event: str, user: str, **details) -> None:
        if self.audit is not None:
            self.audit(event, user, **details)
