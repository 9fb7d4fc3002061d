"""Documents side of dcu-chat: parsing, chunking, embedding, indexes, retrieval, prompts.

``rag`` never imports ``engine``, gradio or fastapi: it receives an embedder and returns hits
and chat messages; ``webui`` joins them with the model. Importing it loads no model and none of
FAISS, bm25s, jieba or pypdf — those are imported when first used.

Typical use::

    from rag import DocumentStore, RagConfig, SentenceTransformerEmbedder
    store = DocumentStore(RagConfig(data_dir=Path("data")), SentenceTransformerEmbedder())
    store.add_files("default", [("report.pdf", pdf_bytes)])
    hits = store.search("default", "What is the warranty period?")
"""

from rag.config import RagConfig
from rag.embedding import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from rag.errors import RagError
from rag.prompts import NOT_FOUND_MESSAGE, build_grounded_messages, detect_language, no_relevant_hits
from rag.retrieval import Hit
from rag.store import DEFAULT_COLLECTION, AddResult, DocumentInfo, DocumentStore, FileError

__all__ = [
    "AddResult", "DEFAULT_COLLECTION", "DocumentInfo", "DocumentStore", "Embedder", "FileError",
    "HashingEmbedder", "Hit", "NOT_FOUND_MESSAGE", "RagConfig", "RagError", "SentenceTransformerEmbedder",
    "build_grounded_messages", "detect_language", "no_relevant_hits",
]
