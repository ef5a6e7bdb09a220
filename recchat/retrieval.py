"""Catalog vectors in ChromaDB, and retrieval with constraints.

Chroma's `where` filters cost 16-33 ms at 10k items and over 100 ms at 100k, against 3-5 ms
for a plain nearest-neighbour query. So the share of the catalog that passes the category and
price constraints is estimated first (sorted prices per category: microseconds), and the
nearest-item window is sized to hold enough matches; constraints are then checked in Python.
Only a filter too selective for a bounded window goes to one `where` query.
"""

from __future__ import annotations

import bisect
import functools
import logging
import math
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import chromadb
import httpx
import numpy as np
from chromadb.config import Settings as ChromaSettings
from tqdm import tqdm

from recchat.catalog import Catalog
from recchat.config import RetrievalSettings
from recchat.embeddings import Encoder, cached_encoder
from recchat.errors import BackgroundStoppedError, VectorStoreError
from recchat.lexical import LexicalIndex
from recchat.models import AttributeValue, Constraints, Item
from recchat.sync_lock import collection_lock
from recchat.understanding.chinese import detect_language, is_cjk
from recchat.understanding.lexicon import TRUE_WORDS, flat, in_stock, name_parts, number

UPSERT_BATCH = 1000  # Chroma accepts at most 5461 per call; smaller batches give a smoother progress bar
REFERENCE_TEXT_WEIGHT = 0.5
HNSW = {"hnsw": {"space": "cosine", "ef_construction": 200, "ef_search": 200}}
Result = TypeVar("Result")
STOP_CHECK_ITEMS = 16
"""Background indexing checks whether to stop after embedding this many items: multilingual-e5-small took 4.6 s for
16 (and 12 s for 64) on 2 CPU cores busy with other work, within `background.STOP_AT_EXIT_S`."""
logger = logging.getLogger(__name__)


def open_store(path: Path) -> chromadb.ClientAPI:
    """A persistent Chroma client; telemetry off, and we never use its default (downloading) embedder."""
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))


def open_vector_store(settings) -> chromadb.ClientAPI:
    """The store `settings.vectorstore` names: a Chroma server at `url` (the same API), else the embedded one."""
    url = settings.vectorstore.url
    if url is None:
        return open_store(settings.store_dir)
    address = urlsplit(url)
    try:
        return chromadb.HttpClient(
            host=address.hostname, port=address.port or 8000, ssl=address.scheme == "https",
            settings=ChromaSettings(anonymized_telemetry=False),
        )
    except ValueError as error:  # what chromadb raises when nothing answers
        raise VectorStoreError(f"no Chroma server answers at {url}: {error} (`make services-up` starts one)") from None


def synced_index(settings, catalog: Catalog, encoder: Encoder | None = None, progress: bool = False) -> VectorIndex:
    """The catalog's index in the configured store, brought up to date (only new or changed items are embedded)."""
    encoder = cached_encoder(settings, encoder, catalog_texts(catalog))
    index = VectorIndex(open_vector_store(settings), catalog.index_name, encoder)
    index.sync(catalog, progress=progress)
    return index


def catalog_texts(catalog: Catalog) -> Iterator[str]:
    """What the encoder reads of each item (and what `embedding.model = 'auto'` chooses the encoder by)."""
    return (item.embedding_text() for item in catalog)


def reaching_the_store(method: Callable[..., Result]) -> Callable[..., Result]:
    """A Chroma server that stops answering is a `VectorStoreError` (503 over HTTP); the next call tries again."""

    @functools.wraps(method)
    def call(*args, **kwargs) -> Result:
        try:
            return method(*args, **kwargs)
        except httpx.TransportError as error:
            message = f"the Chroma server is not answering ({error}); try again when it is back"
            raise VectorStoreError(message) from error

    return call


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    removed: int
    unchanged: int


@dataclass(frozen=True)
class Candidate:
    item: Item
    score: float
    """Relevance to the request, about 0..1: the cosine similarity, plus `words`."""
    words: float = 0.0
    """What the request's exact words add to the similarity (`Retriever._fused`): the ranking adds it too."""


class VectorIndex:
    """One catalog's item vectors in one Chroma collection, named after catalog and encoder."""

    @reaching_the_store
    def __init__(self, client: chromadb.ClientAPI, catalog_name: str, encoder: Encoder):
        self.encoder = encoder
        self.client = client
        name = re.sub(r"[^a-zA-Z0-9._-]", "-", f"{catalog_name}--{encoder.name}")[:200].strip("-._")
        self.collection = client.get_or_create_collection(
            name=name,
            embedding_function=None,
            metadata={"encoder": encoder.name, "dimension": encoder.dimension},
            configuration=HNSW,
        )

    @reaching_the_store
    def count(self) -> int:
        return self.collection.count()

    @reaching_the_store
    def stored_hashes(self) -> dict[str, str]:
        hashes: dict[str, str] = {}
        offset = 0
        while True:
            page = self.collection.get(include=["metadatas"], limit=5000, offset=offset)
            for item_id, metadata in zip(page["ids"], page["metadatas"]):
                hashes[item_id] = str((metadata or {}).get("hash", ""))
            if len(page["ids"]) < 5000:
                return hashes
            offset += 5000

    @reaching_the_store
    def sync(
        self, catalog: Catalog, remove_missing: bool = True, progress: bool = False, stop: threading.Event | None = None
    ) -> SyncReport:
        """Make the index match the catalog: embed and upsert only new or changed items. One process syncs a
        collection at a time (`collection_lock`): the others wait, then find it up to date and embed nothing. `stop`:
        see `upsert`."""
        with collection_lock(self.client, f"{self.collection.name}--sync-lock"):
            stored = self.stored_hashes()
            changed = [item for item in catalog if stored.get(item.id) != item.content_hash()]
            added = sum(1 for item in changed if item.id not in stored)
            self.upsert(changed, progress=progress, stop=stop)
            removed = [item_id for item_id in stored if item_id not in catalog] if remove_missing else []
            self.delete(removed)
        return SyncReport(added, len(changed) - added, len(removed), len(catalog) - len(changed))

    @reaching_the_store
    def upsert(self, items: Iterable[Item], progress: bool = False, stop: threading.Event | None = None) -> None:
        """Embed and store `items`. Background indexing passes `stop` (`BackgroundJob.stop_requested`): once it is
        set, `BackgroundStoppedError` is raised before the next `STOP_CHECK_ITEMS` items are embedded, keeping
        what was stored (a later sync embeds only the rest)."""
        items = list(items)
        bar = tqdm(total=len(items), desc="indexing", unit="item", disable=not progress or not items)
        for start in range(0, len(items), UPSERT_BATCH):
            batch = items[start : start + UPSERT_BATCH]
            vectors = self._encoded([item.embedding_text() for item in batch], stop)
            self.collection.upsert(
                ids=[item.id for item in batch],
                embeddings=vectors,
                metadatas=[_metadata(item) for item in batch],
            )
            bar.update(len(batch))
        bar.close()

    def _encoded(self, texts: list[str], stop: threading.Event | None) -> np.ndarray:
        if stop is None:
            return self.encoder.encode(texts)
        parts = []
        for start in range(0, len(texts), STOP_CHECK_ITEMS):
            if stop.is_set():
                raise BackgroundStoppedError(
                    f"indexing of {self.collection.name} stopped: the process is exiting; the next start carries on"
                )
            parts.append(self.encoder.encode(texts[start : start + STOP_CHECK_ITEMS]))
        return np.concatenate(parts)

    @reaching_the_store
    def delete(self, item_ids: list[str]) -> None:
        for start in range(0, len(item_ids), UPSERT_BATCH):
            self.collection.delete(ids=item_ids[start : start + UPSERT_BATCH])

    @reaching_the_store
    def vectors(self, item_ids: list[str]) -> np.ndarray:
        """The stored vectors of these items (those in the index), in no particular order."""
        if not item_ids:
            return np.zeros((0, self.encoder.dimension), dtype=np.float32)
        found = self.collection.get(ids=list(item_ids), include=["embeddings"])
        return np.asarray(found["embeddings"], dtype=np.float32).reshape(-1, self.encoder.dimension)

    @reaching_the_store
    def vectors_in_order(self, item_ids: list[str]) -> np.ndarray:
        """Unit-length vectors of these items, row i for item_ids[i]; every item must be indexed."""
        rows: dict[str, np.ndarray] = {}
        for start in range(0, len(item_ids), 5000):
            found = self.collection.get(ids=item_ids[start : start + 5000], include=["embeddings"])
            rows.update(zip(found["ids"], np.asarray(found["embeddings"], dtype=np.float32)))
        if not item_ids:
            return np.zeros((0, self.encoder.dimension), np.float32)
        matrix = np.stack([rows[item_id] for item_id in item_ids])
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)

    @reaching_the_store
    def nearest(self, vector: np.ndarray, n: int, where: dict | None = None) -> list[tuple[str, float]]:
        total = self.count()
        if n <= 0 or total == 0:
            return []
        result = self.collection.query(
            query_embeddings=[vector], n_results=min(n, total), where=where, include=["distances"]
        )
        found = zip(result["ids"][0], result["distances"][0])
        return [(item_id, max(0.0, min(1.0, 1.0 - distance))) for item_id, distance in found]


def _metadata(item: Item) -> dict:
    metadata: dict = {"hash": item.content_hash(), "category": item.category.lower()}
    if item.price is not None:
        metadata["price"] = float(item.price)
    return metadata


def item_matches(item: Item, constraints: Constraints) -> bool:
    """Whether an item satisfies every constraint. Excluded terms are looked for in the item's facts
    (title, category, attribute values), not its prose, so "not black" does not drop a coat whose
    description merely mentions black jeans."""
    if constraints.category and item.category.lower() != constraints.category.lower():
        return False
    if constraints.min_price is not None and (item.price is None or item.price < constraints.min_price):
        return False
    if constraints.max_price is not None and (item.price is None or item.price > constraints.max_price):
        return False
    if item.id in constraints.excluded_ids:
        return False
    if unmet_facets(item, constraints):
        return False
    if constraints.excluded_terms:
        facts = " ".join([item.title, item.category, *map(str, _flat(item.attributes.values()))]).lower()
        for term in constraints.excluded_terms:
            # Chinese runs words together, so a Chinese term has no word boundary to start at ("黑色" in "北风黑色").
            boundary = "" if is_cjk(term[:1]) else r"\b"
            if re.search(rf"{boundary}{re.escape(term.lower())}", facts):
                return False
    return True


def unmet_facets(item: Item, constraints: Constraints) -> list[str]:
    """The hard facets, names and numeric limits an item does not meet, as 'facet: wanted' (an item without a
    facet's attribute meets it; one without a name's attribute is not by them; one without a numeric attribute does
    not meet its limit, as with prices)."""
    unmet = []
    for facet, allowed in constraints.facets.items():
        held = item.attributes.get(facet)
        if held is not None and not allowed_values(allowed).intersection(_held(held)):
            said = ", ".join(allowed[:2])
            unmet.append(facet.replace("_", " ") if set(allowed) == TRUE_WORDS else f"{facet}: {said}")
    for facet, allowed in constraints.named.items():
        if not allowed_values(allowed).intersection(_held_names(item.attributes.get(facet, ""))):
            unmet.append(f"{facet}: {', '.join(allowed[:2])}")
    for facet, (low, high) in constraints.ranges.items():
        value = number(item.attributes.get(facet, ""))
        if value is None or low is not None and value < low or high is not None and value > high:
            unmet.append(f"{facet}: {_shown_range(low, high)}")
    return unmet


ORDER_DEPTH = 2
"""With "the cheapest", the best matches this many times as deep as usual are put in price order: enough to reach
the cheap ones of a kind, not so deep that other kinds come in."""


def in_order(candidates: list[Candidate], order: str | None) -> list[Candidate]:
    """Candidates by price ('price_low': cheapest first; 'price_high': dearest first) or by a numeric facet
    ('weight_g:low': lightest first), those without the value last; as they are without an order."""
    if order is None:
        return candidates
    if order in ("price_low", "price_high"):
        sign = 1 if order == "price_low" else -1
        return sorted(candidates, key=lambda c: (c.item.price is None, sign * (c.item.price or 0.0)))
    facet, direction = order.rsplit(":", 1)
    sign = 1 if direction == "low" else -1

    def value(candidate: Candidate) -> tuple[bool, float]:
        held = number(candidate.item.attributes[facet]) if facet in candidate.item.attributes else None
        return held is None, sign * (held or 0.0)

    return sorted(candidates, key=value)


def preference_match(item: Item, preferences: dict[str, list[str]]) -> float:
    """The share of wished facets (colour, material...) the item matches, 0..1; ranks matching items first."""
    if not preferences:
        return 0.0
    matched = sum(
        bool(allowed_values(allowed).intersection(_held(item.attributes.get(facet, "")))) for facet, allowed in
        preferences.items()
    )
    return matched / len(preferences)


OTHER_KIND_WISH = 0.5
"""How much wished facets count for an item of another kind than the one named (see `wished_first`)."""


def wished_first(
    items: Sequence[Item], preferences: dict[str, list[str]], in_kind: Callable[[Item], bool] | None = None
) -> list[float]:
    """Per item, its `preference_match`, counted half for items of another kind than the one the request names
    (`in_kind`) when any of that kind is among them. "Preferably in navy" after "a down parka" put a navy down vest
    of the same category before every parka: the preference weighs more than the similarity between kinds. Not
    counted at all for other kinds, a white coat no longer came before jackets of other colours for "a jacket in
    white", and the converse harness's colour match fell from 92% to 80%."""
    counted = [in_kind(item) for item in items] if in_kind is not None else []
    if not any(counted):
        counted = [True] * len(items)
    return [preference_match(item, preferences) * (1.0 if count else OTHER_KIND_WISH)
            for item, count in zip(items, counted, strict=True)]


def missed_preferences(items: Iterable[Item], preferences: dict[str, list[str]]) -> list[str]:
    """The wished facets that none of the items matches ("blue" where no candidate is): the reply says so rather than
    showing others as if they were."""
    items = list(items)
    return [facet for facet, allowed in preferences.items()
            if items and not any(preference_match(item, {facet: allowed}) for item in items)]


@functools.lru_cache(maxsize=1024)
def _allowed(allowed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(value.lower() for value in allowed)


def allowed_values(allowed: list[str]) -> frozenset[str]:
    return _allowed(tuple(allowed))


def _held(value: AttributeValue) -> set[str]:
    return {part.strip().lower() for part in flat(value)}


def _held_names(value: AttributeValue) -> set[str]:
    return {part.strip().lower() for part in name_parts(value)}


def _shown_range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}-{high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def _flat(values: Iterable) -> Iterable:
    for value in values:
        if isinstance(value, list):
            yield from value
        else:
            yield value


class Bridge(Protocol):
    """What retrieval needs of a reader of other languages (`crosslingual.CrossLingualBridge`): named here, so that
    the two modules do not import each other."""

    @property
    def ready(self) -> bool: ...

    def start(self) -> object: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def nearest_ids(self, request: str) -> list[str]: ...

    def add_items(self, items: Iterable[Item]) -> None: ...


class Retriever:
    """Query text + constraints -> the best matching catalog items."""

    def __init__(
        self, catalog: Catalog, index: VectorIndex, settings: RetrievalSettings,
        bridge: Bridge | None = None,
    ):
        """`bridge`: reads requests the index's English-only encoder cannot (see `crosslingual.py`)."""
        self.catalog = catalog
        self.index = index
        self.settings = settings
        self.bridge = bridge
        self.min_score = settings.min_score if settings.min_score is not None else index.encoder.relevance_floor
        """Items less similar than this to the request are not offered."""
        self._prices: dict[str | None, list[float]] = {None: []}  # sorted prices per category; None: all
        for item in catalog:
            price = item.price if item.price is not None else math.inf
            self._prices.setdefault(item.category.lower(), []).append(price)
            self._prices[None].append(price)
        for prices in self._prices.values():
            prices.sort()
        self._values: dict[str, Counter[str]] = defaultdict(Counter)
        """Per attribute, how many items hold each value (lower-cased), to estimate the share a facet lets pass."""
        self._names: dict[str, Counter[str]] = defaultdict(Counter)
        """The same for names, a string that joins several ("Joel Coen, Ethan Coen") counting for each."""
        self._sold_out: set[str] = set()
        """Items a stock column says cannot be bought now: not offered unless `sold_out` is 'mark'."""
        self._count_values(catalog)
        self.lexical = LexicalIndex(catalog) if settings.lexical_weight > 0 else None

    def _count_values(self, items: Iterable[Item]) -> None:
        for item in items:
            if not in_stock(item):
                self._sold_out.add(item.id)
            for key, value in item.attributes.items():
                self._values[key].update(_held(value))
                self._names[key].update(_held_names(value))

    def add_items(self, items: Iterable[Item]) -> None:
        """Know new catalog items' prices, and index them in the bridge (the index and catalog are updated by the
        caller)."""
        items = list(items)
        if self.bridge is not None:
            self.bridge.add_items(items)
        if self.lexical is not None:
            self.lexical.add(items)
        for item in items:
            price = item.price if item.price is not None else math.inf
            bisect.insort(self._prices.setdefault(item.category.lower(), []), price)
            bisect.insort(self._prices[None], price)
        self._count_values(items)

    def share(self, constraints: Constraints) -> float:
        """Fraction of the catalog that passes the category and price constraints, times the share each hard facet
        lets pass (as if they were independent)."""
        prices = self._prices.get(constraints.category.lower() if constraints.category else None, [])
        if constraints.min_price is None and constraints.max_price is None:
            matching = len(prices)
        else:  # items without a price (stored as inf) never pass a price limit
            low = bisect.bisect_left(prices, constraints.min_price) if constraints.min_price is not None else 0
            high = (
                bisect.bisect_right(prices, constraints.max_price)
                if constraints.max_price is not None
                else bisect.bisect_left(prices, math.inf)
            )
            matching = max(0, high - low)
        total = max(1, len(self._prices[None]))
        return matching / total * self._facet_share(constraints, total)

    def _facet_share(self, constraints: Constraints, total: int) -> float:
        share = 1.0
        for facet, allowed in constraints.facets.items():
            counts = self._values.get(facet, Counter())
            without = max(0, total - sum(counts.values()))  # about: a list attribute counts each of its values
            share *= min(1.0, (without + sum(counts[value] for value in allowed_values(allowed))) / total)
        for facet, allowed in constraints.named.items():
            counts = self._names.get(facet, Counter())
            share *= min(1.0, sum(counts[value] for value in allowed_values(allowed)) / total)
        return share

    def search(
        self, query: str, constraints: Constraints | None = None, k: int | None = None, similar_to: Sequence[str] = (),
        vector: np.ndarray | None = None,
    ) -> list[Candidate]:
        """The k best items for the query text and, when given, near the items in `similar_to`
        (`vector`: the query vector, when the caller has already computed it)."""
        constraints = constraints or Constraints()
        k = k or self.settings.candidates
        share = self.share(constraints)
        if share == 0:
            return []
        vector = self.query_vector(query, similar_to) if vector is None else vector
        total = self.index.count()
        # Excluded ids are known exactly: each may take one place in the window, so make room for all of them.
        excluded = len(constraints.excluded_ids)
        window = math.ceil(k * self.settings.overfetch / share)
        if window <= self.settings.max_window or window + excluded >= total:
            window = min(total, window + excluded)
            found = self._filtered(self._fused(query, self.index.nearest(vector, window), vector), constraints, k)
            # Enough, or the whole catalog was seen, or terms/ids/min_score (which the estimate ignores) cut it.
            if len(found) >= k or window >= total or where_filter(constraints) is None:
                return found
        # Too selective for a bounded window: let Chroma pre-filter what it can express, then finish here.
        facets = self._facet_share(constraints, max(1, total))  # what the `where` cannot say is filtered here
        depth = min(total, math.ceil(k * self.settings.overfetch / max(facets, 1e-6)) + excluded)
        pushed = self.index.nearest(vector, depth, where=where_filter(constraints))
        return self._filtered(self._fused(query, pushed, vector), constraints, k)

    def _fused(
        self, query: str, hits: list[tuple[str, float]], vector: np.ndarray
    ) -> list[tuple[str, float, float, bool]]:
        """The dense hits and the lexical index's best as many, best first, each with its relevance, what its words
        added, and whether it is relevant enough to offer (similar enough, or named exactly: a bare SKU means little
        to the encoder).

        Relevance is the dense similarity plus the request's exact words: w / (1 - w) x BM25 (0..1, from
        `LexicalIndex.search`) x the similarities' spread, which orders the items as (1 - w) x similarity + w x BM25,
        the similarity scaled to 0..1, would, on the similarity's own scale (what the ranking then weighs). An item
        the request names exactly (its whole title, or its id) gets 1, a perfect match."""
        floor = self.min_score
        if self.lexical is None or not hits or not query.strip():
            return [(item_id, score, 0.0, score >= floor) for item_id, score in hits]
        lexical = self.lexical.search(query, len(hits))
        if not lexical:
            return [(item_id, score, 0.0, score >= floor) for item_id, score in hits]
        similarity = dict(hits)
        missing = [item_id for item_id, _ in lexical if item_id not in similarity]
        if missing:  # found by their words only: their similarity as the dense index would give it
            similarity.update(zip(missing, (self.index.vectors_in_order(missing) @ vector).tolist(), strict=True))
        weight = self.settings.lexical_weight
        spread = (max(similarity.values()) - min(similarity.values())) * weight / (1 - weight)
        named = self.lexical.named(query, [item_id for item_id, _ in lexical])
        relevance = {item_id: min(1.0, similarity[item_id]) for item_id in similarity}
        for item_id, score in lexical:
            relevance[item_id] = 1.0 if item_id in named else min(1.0, relevance[item_id] + spread * score)
        words = dict(lexical)
        ordered = sorted(relevance, key=lambda i: (-relevance[i], -words.get(i, 0.0), -similarity[i]))
        return [
            (item_id, relevance[item_id], relevance[item_id] - similarity[item_id],
             similarity[item_id] >= floor or item_id in named)
            for item_id in ordered
        ]

    @property
    def multilingual(self) -> bool:
        """Whether requests in other languages are read in their own words (by the encoder, or the ready bridge)."""
        return self.index.encoder.multilingual or (self.bridge is not None and self.bridge.ready)

    def query_vector(self, query: str, similar_to: Sequence[str] = ()) -> np.ndarray:
        """The query text's vector; with reference items, the centre of their vectors, nudged by the text
        (at half weight, so "a comedy like X" leans to comedies without losing X's neighbourhood). A request the
        encoder cannot read, read by the bridge, is the centre of its nearest items (none near: a zero vector,
        which nothing matches)."""
        # Read across: the encoder cannot read the request, the ready bridge can (so `self.bridge` is set).
        across = not self.index.encoder.multilingual and self.multilingual and detect_language(query) != "en"
        stand_ins = self.bridge.nearest_ids(query) if across else []
        references = self.index.vectors([*similar_to, *stand_ins])
        if not len(references):
            if across:
                return np.zeros(self.index.encoder.dimension, dtype=np.float32)
            return self.index.encoder.encode_queries([query])[0]
        vector = references.mean(axis=0)
        if query.strip() and not across:  # text the encoder cannot read would only add noise
            vector = vector + REFERENCE_TEXT_WEIGHT * self.index.encoder.encode_queries([query])[0]
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def _filtered(
        self, hits: list[tuple[str, float, float, bool]], constraints: Constraints, k: int
    ) -> list[Candidate]:
        """The first k relevant enough hits that pass the constraints."""
        found = []
        for item_id, score, words, relevant in hits:
            item = self.catalog.get(item_id)
            hidden = item_id in self._sold_out and self.settings.sold_out == "hide"
            if relevant and item is not None and not hidden and item_matches(item, constraints):
                found.append(Candidate(item, score, words))
                if len(found) == k:
                    break
        return found


def where_filter(constraints: Constraints) -> dict | None:
    """The part of the constraints Chroma's `where` can express (category, price), or None."""
    clauses: list[dict] = []
    if constraints.category:
        clauses.append({"category": {"$eq": constraints.category.lower()}})
    if constraints.min_price is not None:
        clauses.append({"price": {"$gte": constraints.min_price}})
    if constraints.max_price is not None:
        clauses.append({"price": {"$lte": constraints.max_price}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
