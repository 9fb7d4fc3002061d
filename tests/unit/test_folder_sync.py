"""Folder sync on a temp folder: real store (FAISS + BM25), real SQLite state and jobs, the hashing embedder.

Passes are run as the server runs them (background jobs through ``request_pass``); the timer and
the file-system watcher are started only where a test is about them.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from docs_support import make_pdf, make_services
from fakes import FakeEngine

from assist.errors import NoSuchCollection, NotFollowing, SyncError, SyncOff
from assist.sessions import LOCAL_OWNER
from assist.sync import FolderSync
from assist.sync_config import SyncConfig, SyncEntry, check_folder
from rag.embedding import HashingEmbedder

LOCAL = LOCAL_OWNER


class CountingEmbedder(HashingEmbedder):
    """Hashing vectors; counts the texts embedded; ``gate`` (when set) holds every call until set."""

    def __init__(self) -> None:
        super().__init__()
        self.texts = 0
        self.seen: list[str] = []
        self.gate: threading.Event | None = None
        self.waiting = threading.Event()

    def embed(self, texts, batch_size=32, progress=None):
        texts = list(texts)
        if self.gate is not None and any("Version" in t for t in texts):
            self.waiting.set()
            self.gate.wait(20)
        self.texts += len(texts)
        self.seen += texts
        return super().embed(texts, batch_size, progress)


@pytest.fixture()
def root(tmp_path) -> Path:
    (tmp_path / "root" / "manuals").mkdir(parents=True)
    return tmp_path / "root"


@pytest.fixture()
def folder(root) -> Path:
    folder = root / "manuals"
    (folder / "pump.txt").write_text("The X200 pump needs a new intake filter every six months.")
    (folder / "kettle.md").write_text("# Kettle\n\nDescale the Model K kettle with citric acid once a month.")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (folder / "notes.xyz").write_text("not a supported type")
    (folder / ".hidden.txt").write_text("an editor's swap file")
    return folder


@pytest.fixture()
def embedder():
    return CountingEmbedder()


def make_sync(data: Path, root: Path, embedder, **config):
    services = make_services(data, FakeEngine("ok"), embedder=embedder)
    sync = FolderSync(SyncConfig(root=root, **{"events": False, **config}), services.store, services.collections,
                      services.jobs, data, tick_s=0.1)
    return services, sync


@pytest.fixture()
def world(tmp_path, root, embedder):
    services, sync = make_sync(tmp_path / "data", root, embedder)
    yield services, sync
    sync.stop()
    services.jobs.close()
    sync.close()
    services.store.close()


def wait_job(services, job_id: str, owner: str = LOCAL, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = services.jobs.get(job_id, owner)
        if job.status not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def sync_pass(services, sync, storage: str = "manuals") -> dict:
    """One pass as a background job; its recorded report."""
    job = wait_job(services, sync.request_pass(storage))
    report = sync.state.last_pass(storage)
    assert report["job"] == job.id
    return report


def follow(services, sync, folder: Path, collection: str = "manuals") -> dict:
    """Follow ``folder`` and wait for the first pass; its report."""
    wait_job(services, sync.follow(LOCAL, collection, str(folder))["pass"]["job"])
    return sync.state.last_pass(collection)


def names(services, collection="manuals") -> dict[str, str]:
    return {d.name: d.id for d in services.collections.documents(LOCAL, collection)}


def sources(services, query: str, collection="manuals") -> list[str]:
    return [h.source for h in services.collections.search(LOCAL, collection, query, top_k=3)]


def test_first_pass_adds_supported_files_and_reports_the_unreadable(world, folder):
    services, sync = world
    status = sync.follow(LOCAL, "manuals", str(folder))  # the collection is created for its owner
    assert status["folder"] == str(folder.resolve()) and status["interval_s"] == 300
    job = wait_job(services, status["pass"]["job"])
    assert job.status == "done" and job.files == [str(folder.resolve())]
    assert {d["name"]: d["change"] for d in job.documents} == {"pump.txt": "added", "kettle.md": "added"}
    assert [e["name"] for e in job.errors] == ["broken.pdf"] and "damaged" in job.errors[0]["error"]
    report = sync.status(LOCAL, "manuals")["last_pass"]
    assert report["status"] == "done" and report["files"] == 3
    assert sorted(report["added"]) == ["kettle.md", "pump.txt"] and report["updated"] == report["removed"] == []
    assert report["failed"][0]["path"] == "broken.pdf" and "damaged" in report["failed"][0]["error"]
    assert sorted(names(services)) == ["kettle.md", "pump.txt"]  # not notes.xyz, not .hidden.txt
    assert sources(services, "How often is the intake filter of the X200 pump replaced?")[0] == "pump.txt"


def test_a_changed_file_is_reindexed_new_version_first(world, folder):
    services, sync = world
    follow(services, sync, folder)
    old_id = names(services)["pump.txt"]
    calls = []
    store = services.store
    add, delete = store.add_files, store.delete_document
    store.add_files = lambda *a, **k: calls.append("add") or add(*a, **k)
    store.delete_document = lambda *a, **k: calls.append("delete") or delete(*a, **k)
    (folder / "pump.txt").write_text("The X200 pump needs a new intake filter every three weeks of dusty use.")
    report = sync_pass(services, sync)
    assert report["updated"] == ["pump.txt"] and report["added"] == report["removed"] == []
    assert calls == ["add", "delete"]  # the new version is in before the old one leaves
    new_id = names(services)["pump.txt"]
    assert new_id != old_id and len(names(services)) == 2
    hit = services.collections.search(LOCAL, "manuals", "intake filter X200 dusty weeks", top_k=1)[0]
    assert hit.document_id == new_id and "three weeks" in hit.text
    assert all("six months" not in h.text for h in services.collections.search(LOCAL, "manuals", "six months"))


def test_touching_a_file_does_not_reindex_it(world, folder, embedder):
    services, sync = world
    follow(services, sync, folder)
    before = embedder.texts
    os.utime(folder / "pump.txt", ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    report = sync_pass(services, sync)
    assert report["added"] == report["updated"] == [] and embedder.texts == before


def test_a_deleted_file_leaves_the_index(world, folder):
    services, sync = world
    follow(services, sync, folder)
    (folder / "kettle.md").unlink()
    report = sync_pass(services, sync)
    assert report["removed"] == ["kettle.md"]
    assert sorted(names(services)) == ["pump.txt"]
    assert "kettle.md" not in sources(services, "descale the Model K kettle with citric acid")


def test_a_renamed_file_keeps_its_document(world, folder, embedder):
    services, sync = world
    follow(services, sync, folder)
    document_id, before = names(services)["pump.txt"], embedder.texts
    (folder / "sub").mkdir()
    (folder / "pump.txt").rename(folder / "sub" / "x200-pump.txt")
    report = sync_pass(services, sync)
    assert report["renamed"] == [{"from": "pump.txt", "to": "sub/x200-pump.txt"}]
    assert report["added"] == report["removed"] == []
    assert names(services)["x200-pump.txt"] == document_id and "pump.txt" not in names(services)
    assert embedder.texts == before  # nothing re-embedded
    hit = services.collections.search(LOCAL, "manuals", "intake filter X200 pump", top_k=1)[0]
    assert hit.source == "x200-pump.txt" and hit.text.startswith("The X200 pump")  # no stale title before it
    chunk = services.store._get("manuals").db.chunks_by_ids([hit.chunk_id])[hit.chunk_id]
    assert chunk[3].startswith("x200-pump\n")  # the title the retrievers see follows the new name


def test_identical_files_share_one_document_until_both_are_gone(world, folder):
    services, sync = world
    (folder / "copy.txt").write_bytes((folder / "pump.txt").read_bytes())
    follow(services, sync, folder)
    assert len(names(services)) == 2  # one document for both
    shared = names(services)["copy.txt"]
    (folder / "copy.txt").unlink()
    sync_pass(services, sync)
    assert shared in names(services).values()  # pump.txt still refers to it
    (folder / "pump.txt").unlink()
    sync_pass(services, sync)
    assert sorted(names(services)) == ["kettle.md"]


def test_an_unparseable_file_is_retried_only_when_it_changes(world, folder):
    services, sync = world
    follow(services, sync, folder)
    tries = []
    add = services.store.add_files
    services.store.add_files = lambda c, files, **k: tries.append([n for n, _ in files]) or add(c, files, **k)
    report = sync_pass(services, sync)
    assert tries == [] and [f["path"] for f in report["failed"]] == ["broken.pdf"]  # reported, not retried
    (folder / "broken.pdf").write_bytes(make_pdf(["Safety sheet. Wear goggles when you descale the kettle."]))
    report = sync_pass(services, sync)
    assert tries == [["broken.pdf"]] and report["added"] == ["broken.pdf"] and report["failed"] == []
    assert "broken.pdf" in names(services)


def test_a_file_that_breaks_keeps_its_old_version(world, folder):
    services, sync = world
    follow(services, sync, folder)
    old_id = names(services)["pump.txt"]
    (folder / "pump.txt").write_bytes(b"")  # an editor saved it half-way: empty
    report = sync_pass(services, sync)
    assert report["failed"] == [{"path": "broken.pdf", "error": report["failed"][0]["error"]},
                                {"path": "pump.txt", "error": report["failed"][1]["error"]}]
    assert "empty" in report["failed"][1]["error"] or "no text" in report["failed"][1]["error"]
    assert names(services)["pump.txt"] == old_id  # still searchable as it was
    (folder / "pump.txt").write_text("The X200 pump filter is now changed yearly.")
    report = sync_pass(services, sync)
    assert report["updated"] == ["pump.txt"] and names(services)["pump.txt"] != old_id


def test_restart_between_passes(tmp_path, root, folder, embedder):
    services, sync = make_sync(tmp_path / "data", root, embedder)
    follow(services, sync, folder)
    kettle_id = names(services)["kettle.md"]
    sync.stop()
    services.jobs.close()
    sync.close()
    services.store.close()
    # While the server is down: one file edited, one deleted, one renamed, one added.
    (folder / "pump.txt").write_text("The X200 pump intake filter: replace it every four weeks.")
    (folder / "kettle.md").rename(folder / "kettle-guide.md")
    (folder / "new.txt").write_text("The cafeteria opens at 8 am.")
    before = embedder.texts
    services, sync = make_sync(tmp_path / "data", root, embedder)
    try:
        assert [s.storage for s in sync.state.sources()] == ["manuals"]
        sync.start()  # the timer's first tick queues a catch-up pass
        deadline = time.monotonic() + 30
        while (sync.state.last_pass("manuals") or {}).get("added") != ["new.txt"]:
            assert time.monotonic() < deadline, sync.state.last_pass("manuals")
            time.sleep(0.05)
        report = sync.state.last_pass("manuals")
        assert report["updated"] == ["pump.txt"]
        assert report["renamed"] == [{"from": "kettle.md", "to": "kettle-guide.md"}]
        assert names(services)["kettle-guide.md"] == kettle_id
        assert "four weeks" in services.collections.search(LOCAL, "manuals", "X200 intake filter weeks")[0].text
        assert embedder.texts - before <= 4  # only the edited and the new file were embedded (a chunk or two each)
    finally:
        sync.stop()
        services.jobs.close()
        sync.close()
        services.store.close()


def test_a_change_during_a_pass_is_taken_by_the_next(world, folder, embedder):
    services, sync = world
    follow(services, sync, folder)
    (folder / "pump.txt").write_text("Version two. The X200 pump filter lasts two months.")
    embedder.gate = threading.Event()
    job_id = sync.request_pass("manuals")
    assert embedder.waiting.wait(10)  # the pass is embedding version two
    assert sync.request_pass("manuals") == job_id  # one pass at a time: joins the running one, one more after
    (folder / "pump.txt").write_text("Version three. The X200 pump filter lasts three months.")
    embedder.gate.set()
    embedder.gate = None
    job = wait_job(services, job_id)
    assert job.status == "done" and job.documents == [{"name": "pump.txt", "change": "updated"}]
    versions = [t for t in embedder.seen if "Version" in t]
    assert "Version two" in versions[0] and "three" not in versions[0]  # what was read was indexed, whole
    deadline = time.monotonic() + 30  # the pass asked for meanwhile follows by itself
    while "Version three" not in " ".join(h.text for h in services.collections.search(
            LOCAL, "manuals", "Version X200 pump filter lasts months", top_k=5) if h.source == "pump.txt"):
        assert time.monotonic() < deadline, sync.state.last_pass("manuals")
        time.sleep(0.05)
    assert len(names(services)) == 2


def test_a_pass_cut_short_by_shutdown_is_finished_after_the_restart(tmp_path, root, folder, embedder):
    from assist.ingest_jobs import STOP_MESSAGE

    services, sync = make_sync(tmp_path / "data", root, embedder)
    follow(services, sync, folder)
    (folder / "a.txt").write_text("Version A. The valve V-7 is inspected weekly.")
    embedder.gate = threading.Event()
    job_id = sync.request_pass("manuals")
    assert embedder.waiting.wait(10)
    sync.stop()
    closing = threading.Thread(target=services.jobs.close)  # waits for the running pass to stop
    closing.start()
    time.sleep(0.2)
    embedder.gate.set()
    closing.join(30)
    embedder.gate = None
    report = sync.state.last_pass("manuals")
    assert report["status"] == "failed" and "shutting down" in report["message"]
    assert "a.txt" not in names(services) and "a.txt" not in sync.state.files("manuals")  # not half-indexed
    sync.close()
    services.store.close()
    services, sync = make_sync(tmp_path / "data", root, embedder)
    try:
        assert services.jobs.get(job_id, LOCAL).status == "failed"
        assert STOP_MESSAGE in services.jobs.get(job_id, LOCAL).message
        assert sync_pass(services, sync)["added"] == ["a.txt"] and "a.txt" in names(services)
    finally:
        sync.stop()
        services.jobs.close()
        sync.close()
        services.store.close()


def test_the_timer_starts_a_job_only_when_something_changed(tmp_path, root, folder, embedder):
    services, sync = make_sync(tmp_path / "data", root, embedder, interval_s=0.2)
    try:
        sync.start()
        follow(services, sync, folder)
        time.sleep(1.5)  # several ticks past the interval, nothing changed
        assert len(services.jobs.list(LOCAL)) == 1
        assert sync.state.last_pass("manuals")["checked_at"] >= sync.state.last_pass("manuals")["finished_at"]
        (folder / "pump.txt").write_text("The X200 pump filter: every ten days.")
        deadline = time.monotonic() + 30
        while sync.state.last_pass("manuals")["updated"] != ["pump.txt"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert len(services.jobs.list(LOCAL)) == 2
    finally:
        sync.stop()
        services.jobs.close()
        sync.close()
        services.store.close()


def test_events_start_a_pass(tmp_path, root, folder, embedder):
    services, sync = make_sync(tmp_path / "data", root, embedder, events=True, debounce_s=0.2, interval_s=3600)
    try:
        sync.start()
        sync.follow(LOCAL, "manuals", str(folder))
        deadline = time.monotonic() + 30
        while "pump.txt" not in names(services):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sync.status(LOCAL, "manuals")["watching"] is True
        (folder / "faq.md").write_text("# FAQ\n\nThe help desk phone number is 555-0199.")
        while "faq.md" not in names(services):
            assert time.monotonic() < deadline, sync.state.last_pass("manuals")
            time.sleep(0.05)
    finally:
        sync.stop()
        services.jobs.close()
        sync.close()
        services.store.close()


def test_folders_outside_the_root_are_refused(tmp_path, root, folder):
    config = SyncConfig(root=root)
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")
    for outside in (tmp_path / "elsewhere", root / "link", root / ".." / "elsewhere", "/etc", "../elsewhere"):
        with pytest.raises(SyncError, match="outside the sync root"):
            check_folder(config, str(outside))
    with pytest.raises(SyncError, match="no folder"):
        check_folder(config, str(root / "missing"))
    assert check_folder(config, "manuals") == folder.resolve()  # relative: under the root
    with pytest.raises(SyncOff, match="--sync-root"):
        check_folder(SyncConfig(), str(folder))


def test_a_link_out_of_the_root_inside_the_folder_is_not_followed(world, tmp_path, folder):
    services, sync = world
    (tmp_path / "secret.txt").write_text("The root password is hunter2.")
    (folder / "secret.txt").symlink_to(tmp_path / "secret.txt")
    report = follow(services, sync, folder)
    assert "secret.txt" not in names(services)
    assert any(f["path"] == "secret.txt" and "outside the sync root" in f["error"] for f in report["failed"])


def test_stop_following_and_deleted_collections(world, folder):
    services, sync = world
    follow(services, sync, folder)
    assert sync.unfollow(LOCAL, "manuals") == {"collection": "manuals", "following": False}
    assert sorted(names(services)) == ["kettle.md", "pump.txt"]  # the documents stay
    with pytest.raises(NotFollowing):
        sync.status(LOCAL, "manuals")
    follow(services, sync, folder)
    services.collections.delete(LOCAL, "manuals")
    job = wait_job(services, sync.request_pass("manuals"))
    assert job.status == "failed" and sync.state.source("manuals") is None  # forgotten with its collection
    with pytest.raises(NoSuchCollection):
        sync.status(LOCAL, "manuals")


def test_sync_tables_in_the_config(tmp_path, root, folder, embedder):
    from app_settings import build_sync_config, resolve_settings
    from app_settings import parser as make_parser

    toml = tmp_path / "dcu.toml"
    toml.write_text(f'sync_root = "{root}"\n\n[[sync]]\ncollection = "handbooks"\nfolder = "{folder}"\n'
                    'interval_s = 60\n')
    config = build_sync_config(resolve_settings(make_parser().parse_args(["--config", str(toml)]), environ={}))
    assert config.root == root and config.entries == (SyncEntry("handbooks", str(folder), 60.0, None),)
    toml.write_text('[[sync]]\ncollection = "x"\nfolders = "/srv"\n')
    with pytest.raises(SyncError, match="did you mean folder"):
        build_sync_config(resolve_settings(make_parser().parse_args(["--config", str(toml)]), environ={}))
    services, sync = make_sync(tmp_path / "data", root, embedder)
    sync.config = config
    try:
        sync.start()
        deadline = time.monotonic() + 30
        while sorted(names(services, "handbooks")) != ["kettle.md", "pump.txt"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sync.status(LOCAL, "handbooks")["origin"] == "config"
    finally:
        sync.stop()
        services.jobs.close()
        sync.close()
        services.store.close()
    services, sync = make_sync(tmp_path / "data", root, embedder)  # the table taken out of the file
    try:
        sync.start()
        assert sync.state.source("handbooks") is None and len(names(services, "handbooks")) == 2  # documents kept
    finally:
        sync.stop()
        services.jobs.close()
        sync.close()
        services.store.close()


def test_a_file_being_written_while_read_is_left_for_the_next_pass(world, folder, monkeypatch):
    import assist.sync_pass as sync_pass_module

    services, sync = world
    follow(services, sync, folder)
    (folder / "pump.txt").write_text("The X200 pump filter: every five weeks.")
    real = sync_pass_module._read_stable
    calls = []

    def writing_during_the_first_read(path):  # as if the size or mtime moved while it was read
        calls.append(path.name)
        return None if len(calls) == 1 else real(path)

    monkeypatch.setattr(sync_pass_module, "_read_stable", writing_during_the_first_read)
    report = sync_pass(services, sync)
    assert report["deferred"] == ["pump.txt"] and report["updated"] == []
    assert "six months" in services.collections.search(LOCAL, "manuals", "X200 intake filter")[0].text
    deadline = time.monotonic() + 30  # a pass follows by itself shortly after
    while (sync.state.last_pass("manuals") or {}).get("updated") != ["pump.txt"]:
        assert time.monotonic() < deadline, sync.state.last_pass("manuals")
        time.sleep(0.05)
    assert "five weeks" in services.collections.search(LOCAL, "manuals", "X200 pump filter weeks")[0].text
