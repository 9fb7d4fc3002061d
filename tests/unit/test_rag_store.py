"""rag.store: collections, per-file errors, dedupe, delete, persistence, crash recovery, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rag import errors
from rag.config import RagConfig
from rag.embedding import HashingEmbedder
from rag.store import DocumentStore

GUIDE = b"# Pump guide\n\n## Warranty\n\nThe X200 pump warranty lasts 36 months.\n\n## Care\n\nOil the bearings monthly.\n"
NOTES = "食堂早上八点开门，晚上七点关门。会议室需要提前一天预订。".encode()
REPORT = b"Quarterly report. Revenue grew by 12 percent. Costs fell by 3 percent."


class CountingEmbedder(HashingEmbedder):
    def __init__(self, dim: int = 64, languages=None) -> None:
        super().__init__(dim)
        self.embedded = 0
        self.languages = languages

    def embed(self, texts, batch_size=32, progress=None):
        self.embedded += len(texts)
        return super().embed(texts, batch_size, progress)


@pytest.fixture()
def store(tmp_path):
    s = DocumentStore(RagConfig(data_dir=tmp_path, relevance_threshold=0.0), CountingEmbedder())
    yield s
    s.close()


def add_all(store, collection="default"):
    result = store.add_files(collection, [("guide.md", GUIDE), ("notes.txt", NOTES), ("report.txt", REPORT)])
    assert not result.errors
    return result


def test_default_collection_always_exists_and_cannot_be_deleted(store):
    assert store.list_collections() == ["default"]
    with pytest.raises(errors.InvalidName, match="default collection cannot be deleted"):
        store.delete_collection("default")


def test_create_list_delete_collections(store, tmp_path):
    assert store.create_collection("team-a_1") == "team-a_1"
    store.create_collection("b")
    assert store.list_collections() == ["default", "b", "team-a_1"]
    with pytest.raises(errors.CollectionExists):
        store.create_collection("b")
    assert store.create_collection("b", exist_ok=True) == "b"
    add_all(store, "b")
    store.delete_collection("b")
    assert store.list_collections() == ["default", "team-a_1"]
    assert not (tmp_path / "collections" / "b").exists()
    with pytest.raises(errors.CollectionNotFound):
        store.search("b", "pump")
    with pytest.raises(errors.CollectionNotFound):
        store.list_documents("nope")


@pytest.mark.parametrize("name", ["", "a" * 65, "../etc", "has space", "点", "a/b", ".hidden"])
def test_invalid_collection_names(store, name):
    with pytest.raises(errors.InvalidName):
        store.create_collection(name)


def test_add_search_and_document_info(store):
    result = add_all(store)
    assert [d.name for d in result.documents] == ["guide.md", "notes.txt", "report.txt"]
    info = result.documents[0].to_dict()
    assert set(info) == {"id", "name", "pages", "chunks", "sha256", "added_at"}
    assert info["pages"] is None and info["chunks"] == 2 and len(info["sha256"]) == 64
    hits = store.search("default", "How long is the X200 pump warranty?")
    assert hits[0].source == "guide.md" and "36 months" in hits[0].text
    assert hits[0].text.startswith("Pump guide > Warranty\n")
    assert set(hits[0].to_dict()) == {"document_id", "source", "page", "text", "score", "chunk_id"}
    assert hits[0].document_id == result.documents[0].id
    assert store.search("default", "食堂几点开门？")[0].source == "notes.txt"
    assert store.search("default", "   ") == []
    assert [d.name for d in store.list_documents("default")] == ["guide.md", "notes.txt", "report.txt"]


def test_failed_files_are_reported_and_the_others_still_go_in(store):
    add_all(store)
    before = len(store._index(store._get("default")))
    result = store.add_files("default", [
        ("broken.pdf", b"%PDF-1.4 garbage"), ("new.md", b"Zebras sleep standing up."),
        ("virus.exe", b"MZ"), ("empty.txt", b""),
    ])
    assert [d.name for d in result.documents] == ["new.md"]
    assert [e.name for e in result.errors] == ["broken.pdf", "virus.exe", "empty.txt"]
    assert all(e.to_dict()["error"] for e in result.errors)
    assert len(store._index(store._get("default"))) == before + 1
    assert len(store.list_documents("default")) == 4
    assert store.search("default", "pump warranty")[0].source == "guide.md"


def test_reupload_is_deduplicated_by_content(store):
    first = add_all(store)
    embedded = store.embedder.embedded
    again = store.add_files("default", [("renamed.md", GUIDE), ("guide.md", GUIDE)])
    assert again.documents == [first.documents[0], first.documents[0]]
    assert store.embedder.embedded == embedded  # nothing re-embedded
    assert len(store.list_documents("default")) == 3


def test_same_file_twice_in_one_upload_is_indexed_once(store):
    result = store.add_files("default", [("a.txt", REPORT), ("b.txt", REPORT)])
    assert result.documents[0] == result.documents[1]
    assert len(store.list_documents("default")) == 1
    assert len(store._index(store._get("default"))) == result.documents[0].chunks


def test_delete_document_removes_vectors_and_postings(store):
    result = add_all(store)
    guide = result.documents[0]
    store.delete_document("default", guide.id)
    assert all(h.source != "guide.md" for h in store.search("default", "X200 pump warranty bearings"))
    assert len(store._index(store._get("default"))) == sum(d.chunks for d in result.documents[1:])
    with pytest.raises(errors.DocumentNotFound):
        store.delete_document("default", guide.id)
    with pytest.raises(errors.DocumentNotFound):
        store.get_document("default", guide.id)
    # deleted content can be uploaded again
    assert store.add_files("default", [("guide.md", GUIDE)]).documents[0].id == guide.id


def test_everything_survives_a_restart_without_re_embedding(tmp_path):
    config = RagConfig(data_dir=tmp_path, relevance_threshold=0.0)
    store = DocumentStore(config, CountingEmbedder())
    store.create_collection("c")
    add_all(store, "c")
    before = [h.to_dict() for h in store.search("c", "revenue costs")]
    store.close()
    embedder = CountingEmbedder()
    reopened = DocumentStore(config, embedder)
    assert reopened.list_collections() == ["default", "c"]
    assert [h.to_dict() for h in reopened.search("c", "revenue costs")] == before
    assert embedder.embedded == 1  # only the query
    reopened.close()


def test_a_failure_while_indexing_leaves_the_collection_intact(store, monkeypatch):
    add_all(store)
    index = store._index(store._get("default"))
    before_ids = sorted(index.ids.tolist())

    def broken_save():
        raise OSError("disk full")

    monkeypatch.setattr(index, "save", broken_save)
    with pytest.raises(OSError):
        store.add_files("default", [("new.md", b"Zebras sleep standing up.")])
    monkeypatch.undo()
    assert sorted(index.ids.tolist()) == before_ids
    assert [d.name for d in store.list_documents("default")] == ["guide.md", "notes.txt", "report.txt"]
    assert store.search("default", "zebras sleep")[0].source != "new.md"
    assert store.add_files("default", [("new.md", b"Zebras sleep standing up.")]).documents[0].name == "new.md"


def test_open_repairs_crash_leftovers_and_missing_index(tmp_path):
    config = RagConfig(data_dir=tmp_path, relevance_threshold=0.0)
    store = DocumentStore(config, CountingEmbedder())
    add_all(store)
    col = store._get("default")
    # a crash between "insert pending" and "index saved": a pending row with chunks
    col.db.insert_pending([__import__("rag.metadata", fromlist=["NewDocument"]).NewDocument(
        "ghost", "ghost.txt", "0" * 64, "txt", None, [(None, 0, 5, "ghost text")])])
    store.close()
    for path in (tmp_path / "collections" / "default" / "index").iterdir():
        path.unlink()  # index files lost
    embedder = CountingEmbedder()
    reopened = DocumentStore(config, embedder)
    hits = reopened.search("default", "ghost text pump warranty")
    assert {h.source for h in hits} <= {"guide.md", "notes.txt", "report.txt"} and hits
    assert embedder.embedded == sum(d.chunks for d in reopened.list_documents("default")) + 1
    assert reopened._get("default").db.pending_documents() == []
    reopened.close()


def test_a_new_embedding_model_re_embeds_the_collection(tmp_path):
    config = RagConfig(data_dir=tmp_path, relevance_threshold=0.0)
    store = DocumentStore(config, CountingEmbedder(64))
    add_all(store)
    store.close()
    reopened = DocumentStore(config, CountingEmbedder(32))
    assert reopened.search("default", "pump warranty")[0].source == "guide.md"
    assert len(reopened._index(reopened._get("default"))) == sum(d.chunks for d in reopened.list_documents("default"))
    reopened.close()


def test_progress_is_reported_from_zero_to_one(store):
    seen = []
    store.add_files("default", [("guide.md", GUIDE), ("bad.exe", b"x"), ("report.txt", REPORT)],
                    progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and all(0 <= f <= 1 for f in fractions)
    assert any("Parsing guide.md" in m for _, m in seen) and any("Embedd" in m for _, m in seen)


def test_too_many_files(tmp_path):
    store = DocumentStore(RagConfig(data_dir=tmp_path, max_files_per_upload=2), HashingEmbedder())
    with pytest.raises(errors.TooManyFiles):
        store.add_files("default", [("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c")])
    store.close()


def test_threshold_filters_irrelevant_hits(tmp_path):
    store = DocumentStore(RagConfig(data_dir=tmp_path, relevance_threshold=0.3), HashingEmbedder())
    add_all(store)
    assert store.search("default", "X200 pump warranty months")
    assert store.search("default", "completely unrelated zebra giraffe") == []
    assert store.search("default", "completely unrelated zebra giraffe", min_score=0.0)
    store.close()


def test_dense_score_is_ignored_for_languages_the_embedder_does_not_know(tmp_path):
    store = DocumentStore(RagConfig(data_dir=tmp_path, relevance_threshold=0.0),
                          CountingEmbedder(languages=("en",)))
    add_all(store)
    zh = store.search("default", "食堂几点开门？")
    assert zh[0].source == "notes.txt" and all(h.score == pytest.approx(h.lexical) for h in zh)
    en = store.search("default", "pump warranty")
    assert en[0].score == pytest.approx((en[0].dense + en[0].lexical) / 2)
    store.close()


def test_concurrent_uploads_and_searches(store):
    failures = []

    def upload(n):
        try:
            store.add_files("default", [(f"doc{n}.txt", f"Document {n} is about topic {n} and zebras.".encode())])
        except Exception as exc:  # collected and asserted below
            failures.append(exc)

    def search():
        try:
            for _ in range(10):
                store.search("default", "zebras topic")
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(6)] + \
              [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(store.list_documents("default")) == 6
    assert len(store._index(store._get("default"))) == 6
    assert np.isfinite([h.score for h in store.search("default", "zebras")]).all()
