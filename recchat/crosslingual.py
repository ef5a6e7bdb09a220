"""Requests in other languages against a catalog searched by an English-only encoder.

all-MiniLM-L6-v2 stays the English catalog's encoder because its similarities tell off-topic requests from real
ones (see `embeddings.E5_FLOOR`), but it cannot read Chinese. The bridge indexes the same catalog with a
multilingual encoder, in a background thread, and turns a request it reads into the English encoder's space: the
mean vector of the items nearest to it. The search, the re-ranking and the feedback then go on as for any request.
Until the bridge is ready, a Chinese request is read through the glossary, with the English-only notice.

It starts when something serves shoppers (`recchat serve`, the UI, `recchat chat` with a request in another
language) or at the first request in another language, never in harnesses and benchmarks that only ask in English,
where its background indexing would take their CPU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from recchat.background import BackgroundJob
from recchat.catalog import Catalog
from recchat.config import Settings
from recchat.errors import BackgroundStoppedError
from recchat.models import Item

logger = logging.getLogger(__name__)

NEIGHBOURS = 3
"""Items whose English-space vectors stand for a request: enough to steady one odd neighbour, few enough to keep
the request's kind (measured on the paired requests: the category of the first item agrees as with e5 alone)."""


class CrossLingualBridge:
    """A multilingual index of a catalog, built in the background, that stands a request in for its nearest items."""

    def __init__(self, open_index: Callable[[], object], catalog: Catalog):
        """`open_index`: opens (and loads the encoder of) the multilingual `VectorIndex`; called in the background
        thread, since loading the model and embedding the catalog take seconds to minutes."""
        self._open_index = open_index
        self.index = None
        self.error: str | None = None
        """Why the bridge could not be built (it stays off; Chinese requests keep the glossary)."""
        self._ready = threading.Event()
        self._pending: list[Item] = []  # items added while the index was being built
        self._lock = threading.Lock()
        self._catalog = catalog
        self._job = BackgroundJob("crosslingual-index")

    def start(self) -> CrossLingualBridge:
        """Begin building the index in the background (once; later calls do nothing)."""
        with self._lock:
            if not self._job.started:
                self._job.start(self._build, self._catalog)
        return self

    @property
    def started(self) -> bool:
        return self._job.started

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Start if need be, and block until the index is built (or failed, or `timeout` passed); whether it is
        ready."""
        self.start()
        self._job.wait(timeout)
        return self.ready

    def _build(self, catalog: Catalog) -> None:
        try:
            index = self._open_index()
            index.sync(catalog, remove_missing=False, stop=self._job.stop_requested)
            with self._lock:
                if self._pending:
                    index.upsert(self._pending)
                self.index, self._pending = index, []
            self._ready.set()
            logger.info("cross-lingual index of %s ready (%s)", catalog.name, index.encoder.name)
        except BackgroundStoppedError as stopped:
            logger.info("%s", stopped)
        except Exception as error:  # the product still answers: Chinese through the glossary, as without a bridge
            self.error = f"{type(error).__name__}: {error}"
            logger.warning("no cross-lingual index for %s: %s", catalog.name, self.error)

    def add_items(self, items: Iterable[Item]) -> None:
        """Index new catalog items too. A failure is logged, not raised: the items are in the catalog's own index,
        and requests in English find them."""
        items = list(items)
        with self._lock:
            if self.index is None:
                self._pending.extend(items)
                return
        try:
            self.index.upsert(items)
        except Exception as error:
            logger.warning("%d new items not in the cross-lingual index: %s", len(items), error)

    def nearest_ids(self, request: str) -> list[str]:
        """The catalog items nearest to the request, as the multilingual encoder reads it (empty when none is near
        enough by the encoder's own floor, or the bridge is not ready)."""
        if not self.ready or not request.strip():
            return []
        encoder = self.index.encoder
        hits = self.index.nearest(encoder.encode_queries([request])[0], NEIGHBOURS)
        return [item_id for item_id, score in hits if score >= encoder.relevance_floor]


def bridge_for(settings: Settings, catalog: Catalog, multilingual_catalog_encoder: bool) -> CrossLingualBridge | None:
    """The configured bridge (`embedding.bridge`), not yet started; None when it is off or the catalog's encoder
    reads other languages itself."""
    if not settings.embedding.bridge or multilingual_catalog_encoder:
        return None
    from recchat.embeddings import cached_encoder, load_encoder
    from recchat.retrieval import VectorIndex, open_vector_store

    def open_index():
        encoder = load_encoder(settings.embedding.model_copy(update={"model": settings.embedding.bridge}))
        return VectorIndex(open_vector_store(settings), catalog.index_name, cached_encoder(settings, encoder))

    return CrossLingualBridge(open_index, catalog)
