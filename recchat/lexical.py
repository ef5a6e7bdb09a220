"""Exact words: a BM25 index over each item's id, title and short facts, fused with the dense index, so that a model
number ("WH-1000XM6"), a SKU or an exact title comes first. A sentence encoder places "WH-1000XM5" right beside
"WH-1000XM6": it reads meaning, not codes.

BM25 is bm25s's: sparse matrices in numpy and scipy (already dependencies), no compiled code of its own, and a
query over 100k items in milliseconds; rank-bm25 scores every document in Python and is several times slower, and
tantivy is a whole search engine with its own index files to keep in step with Chroma's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import bm25s
import numpy as np

from recchat.models import Item

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each index build at DEBUG, whatever the app says
WORD = re.compile(r"[^\W_]+(?:[-./][^\W_]+)*")
CJK = re.compile(r"[\u4e00-\u9fff]+")
CODE_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789-./_")
MAX_FACT_CHARS = 40
"""Longer attribute values are prose; the description is left to the dense index."""


def tokens(text: str) -> list[str]:
    """Lower-cased words, a code's parts and the code run together ("WH-1000XM6" -> wh, 1000xm6, wh1000xm6, so that
    "WH1000XM6" finds it too), and Chinese as pairs of characters (it has no spaces between words)."""
    found: list[str] = []
    for run in WORD.findall(text.lower()):
        for chinese in CJK.findall(run):
            found += [chinese[i:i + 2] for i in range(max(1, len(chinese) - 1))]
        latin = [part for part in re.split(r"[-./]|[\u4e00-\u9fff]+", run) if part]
        found += latin
        if len(latin) > 1:
            found.append("".join(latin))
    return found


def lexical_text(item: Item) -> str:
    facts = [str(value) for value in item.attributes.values()
             if isinstance(value, str) and len(value) <= MAX_FACT_CHARS]
    return " ".join([item.id, item.title, *facts])


class LexicalIndex:
    """BM25 over the catalog's items, and which items a request names exactly."""

    def __init__(self, items: Iterable[Item]):
        self._ids: list[str] = []
        self._position: dict[str, int] = {}
        self._documents: list[list[str]] = []
        self._exact: list[tuple[frozenset[str], str]] = []
        """Per item, what a request must hold to name it exactly: every word of its title, or its id."""
        self._bm25 = bm25s.BM25()
        self.add(items)

    def add(self, items: Iterable[Item]) -> None:
        """Index more items (bm25s builds its matrix at once: the index is rebuilt, about a second per 100k items)."""
        for item in items:
            self._position[item.id] = len(self._ids)
            self._ids.append(item.id)
            self._documents.append(tokens(lexical_text(item)))
            self._exact.append((frozenset(tokens(item.title)), item.id.lower()))
        if self._documents:
            self._bm25 = bm25s.BM25()
            self._bm25.index(self._documents, show_progress=False)

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, query: str, n: int) -> list[tuple[str, float]]:
        """Up to `n` items holding every word of the query that the catalog holds, best first, each with its BM25
        score over the best one's, times the share of the query's words the catalog holds at all (of 雨天穿的外套
        only 外套 is the catalog's, and a word every jacket holds says little). An item holding only some of the
        words is not named by them: with one of three counted, the film "Kids (1995)" came before every animated
        film for "an animated movie for kids", and the movies prompt suite fell below its threshold. Model codes
        and SKUs (`bench/hybrid.py`) come first as often as when any word counted (0.90 and 1.00)."""
        said = tokens(query)
        words = [word for word in said if word in self._bm25.vocab_dict]
        if not words or not self._ids:
            return []
        scores = self._bm25.get_scores(words)
        n = min(n, int(np.count_nonzero(scores)))
        if n == 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        distinct = set(words)
        holding = [i for i in top[np.argsort(-scores[top], kind="stable")] if distinct.issubset(self._documents[i])]
        if not holding:
            return []
        scale = len(words) / len(said) / float(scores[holding[0]])
        return [(self._ids[i], float(scores[i]) * scale) for i in holding]

    def named(self, query: str, among: Iterable[str]) -> set[str]:
        """Those of `among` that the query names exactly: all the words of a title of two or more words, or the id."""
        said = set(tokens(query))
        lowered = query.lower()
        named = set()
        for item_id in among:
            index = self._position.get(item_id)
            if index is None:
                continue
            title, identifier = self._exact[index]
            if len(title) >= 2 and title <= said or len(identifier) >= 4 and _holds(lowered, identifier):
                named.add(item_id)
        return named


def _holds(text: str, code: str) -> bool:
    """Whether `code` is in `text` as a whole ("sku-12" is not in "sku-123" nor in "sku-12-9")."""
    start = text.find(code)
    while start >= 0:
        end = start + len(code)
        before, after = text[start - 1: start], text[end: end + 1]  # "" at either end of the text
        if before not in CODE_CHARACTERS and after not in CODE_CHARACTERS:
            return True
        start = text.find(code, start + 1)
    return False
