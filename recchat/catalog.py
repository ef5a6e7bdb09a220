"""Catalog files (JSONL or CSV) -> validated `Item`s. All or nothing: a bad row loads no row.

JSONL: one object per line with the `Item` fields. CSV: columns id, title, category and
optionally description, price, currency; any other column becomes an attribute, and a
value with '|' in it becomes a list ("wool|cashmere").
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from recchat.config import BUNDLED_CATALOG_DIR, Settings
from recchat.errors import CatalogError, CatalogNotFoundError, CatalogProblem
from recchat.models import Item, field_errors

CORE_FIELDS = {"id", "title", "description", "category", "price", "currency"}


class Catalog:
    """Items of one catalog, by id, in file order."""

    def __init__(self, name: str, items: Iterable[Item], index_name: str | None = None):
        self.name = name
        self.index_name = index_name or name
        """What its vectors are kept under: the name, and for a file given by path, a mark of the folder too, so that
        `shop.csv` of two shops never share (or delete) each other's vectors."""
        self._items: dict[str, Item] = {}
        for item in items:
            if item.id in self._items:
                raise ValueError(f"duplicate item id {item.id!r} in catalog {name!r}")
            self._items[item.id] = item

    def add(self, items: Iterable[Item]) -> list[Item]:
        """Add new items (all or none); an id already in the catalog, or given twice, is a `CatalogError`."""
        items = list(items)
        if not all(isinstance(item, Item) for item in items):
            kinds = sorted({type(item).__name__ for item in items if not isinstance(item, Item)})
            raise CatalogError([_added("-", f"pass recchat.Item objects, not {kinds}")])
        repeated = sorted(item_id for item_id, count in Counter(item.id for item in items).items() if count > 1)
        clashes = [item.id for item in items if item.id in self._items]
        if clashes or repeated:
            problems = [_added("id", f"{item_id!r} is already in catalog {self.name!r}") for item_id in clashes]
            problems += [_added("id", f"{item_id!r} is given twice") for item_id in repeated]
            raise CatalogError(problems)
        for item in items:
            self._items[item.id] = item
        return items

    def remove(self, item_ids: Iterable[str]) -> None:
        """Take items out again (an addition that could not be indexed)."""
        for item_id in item_ids:
            self._items.pop(item_id, None)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items.values())

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def get(self, item_id: str) -> Item | None:
        return self._items.get(item_id)

    def __getitem__(self, item_id: str) -> Item:
        return self._items[item_id]

    def categories(self) -> list[str]:
        return sorted({item.category for item in self})


def resolve_catalog_path(name_or_path: str, settings: Settings) -> Path:
    """A catalog name ('products', 'movies') or a file path -> the file to load."""
    path = Path(name_or_path)
    if path.suffix in {".jsonl", ".csv"}:
        if not path.is_file():
            raise CatalogNotFoundError(f"catalog file {path} does not exist")
        return path
    for folder in (BUNDLED_CATALOG_DIR, settings.generated_catalog_dir):
        for suffix in (".jsonl", ".csv"):
            candidate = folder / f"{name_or_path}{suffix}"
            if candidate.is_file():
                return candidate
    hint = " Build it with `recchat catalog build-movies`." if name_or_path == "movies" else ""
    raise CatalogNotFoundError(
        f"no catalog named {name_or_path!r} in {BUNDLED_CATALOG_DIR} or {settings.generated_catalog_dir}.{hint}"
    )


def load_configured_catalog(settings: Settings) -> Catalog:
    """The catalog `settings.catalog` names, loaded and validated."""
    return load_resolved(settings.catalog, resolve_catalog_path(settings.catalog, settings))


def load_resolved(name_or_path: str, path: Path) -> Catalog:
    """The catalog a name or path was resolved to (`path`), named after its file, its index named by
    `index_name_of`."""
    catalog = load_catalog(path, name=path.stem)
    catalog.index_name = index_name_of(name_or_path, path)
    return catalog


def index_name_of(name_or_path: str, path: Path) -> str:
    """A bundled or generated catalog's index is named after it ('products'); a file given by path, after its stem
    and its folder ('shop-3f2a9c1e'), so two shops' `shop.csv` files never share one index."""
    if Path(name_or_path).suffix not in {".jsonl", ".csv"}:
        return path.stem
    return f"{path.stem}-{hashlib.sha1(str(path.resolve().parent).encode()).hexdigest()[:8]}"


def _added(field: str, problem: str) -> CatalogProblem:
    return CatalogProblem("add_items", 0, field, problem)


def load_catalog(path: str | Path, name: str | None = None) -> Catalog:
    """Load and validate every row; raise `CatalogError` listing all bad rows."""
    path = Path(path)
    if not path.is_file():
        raise CatalogNotFoundError(f"catalog file {path} does not exist")
    _check_utf8(path)
    if path.suffix == ".jsonl":
        rows = _jsonl_rows(path)
    elif path.suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise CatalogError([CatalogProblem(str(path), 0, "-", "unsupported file type; use .jsonl or .csv")])

    items: list[Item] = []
    problems: list[CatalogProblem] = []
    first_line_of: dict[str, int] = {}
    for line, row in rows:
        if isinstance(row, CatalogProblem):
            problems.append(row)
            continue
        try:
            item = Item.model_validate(row)
        except ValidationError as error:
            problems.extend(CatalogProblem(str(path), line, field, why) for field, why in field_errors(error))
            continue
        if item.id in first_line_of:
            problems.append(
                CatalogProblem(
                    str(path), line, "id", f"duplicate id {item.id!r} (first on line {first_line_of[item.id]})"
                )
            )
            continue
        first_line_of[item.id] = line
        items.append(item)
    if problems:
        raise CatalogError(problems)
    if not items:
        raise CatalogError([CatalogProblem(str(path), 0, "-", "the catalog has no items")])
    return Catalog(name or path.stem, items)


def _check_utf8(path: Path) -> None:
    """`CatalogError` naming the line of the first byte that is not UTF-8 (else a raw decoding error would show)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CatalogError([CatalogProblem(
            str(path), line, "-", f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8"
        )]) from None


PRICE_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP"}
"""Currency symbols a spreadsheet writes before or after a price, and the currency each stands for."""
WRITTEN_PRICE = re.compile(r"^(?P<before>[$€£¥]?)\s*(?P<amount>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*"
                           r"(?P<after>[$€£¥]?)$")
"""A price as shops export it: "$1,299.00", "1299", "45.50 €" (a comma only as a thousands separator)."""


def read_price(record: dict) -> dict:
    """The record with a price written as text ("$1,299.00") made a number, and its symbol the currency when the
    record names none; a price that is no amount is left for validation to report."""
    price = record.get("price")
    if not isinstance(price, str) or not (written := WRITTEN_PRICE.match(price.strip())):
        return record
    symbol = written.group("before") or written.group("after")
    record = {**record, "price": float(written.group("amount").replace(",", ""))}
    if symbol in PRICE_SYMBOLS and not record.get("currency"):
        record["currency"] = PRICE_SYMBOLS[symbol]
    return record


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict | CatalogProblem]]:
    with path.open(encoding="utf-8-sig") as handle:  # -sig: a byte-order mark some editors write is no text
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield line_number, CatalogProblem(str(path), line_number, "-", f"not valid JSON ({error.msg})")
                continue
            if not isinstance(row, dict):
                yield line_number, CatalogProblem(str(path), line_number, "-", "each line must be a JSON object")
                continue
            yield line_number, read_price(row)


def _csv_rows(path: Path) -> Iterator[tuple[int, dict | CatalogProblem]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:  # Excel's "CSV UTF-8" starts with a byte-order mark
        reader = csv.DictReader(handle)
        missing = {"id", "title", "category"} - set(reader.fieldnames or [])
        if missing:
            yield 1, CatalogProblem(str(path), 1, ",".join(sorted(missing)), "required column missing from header")
            return
        for row in reader:
            line_number = reader.line_num
            if None in row:
                yield line_number, CatalogProblem(str(path), line_number, "-", "more values than header columns")
                continue
            record: dict = {key: value for key, value in row.items() if key in CORE_FIELDS and value not in (None, "")}
            record["attributes"] = {
                key: (value.split("|") if "|" in value else value)
                for key, value in row.items()
                if key not in CORE_FIELDS and value not in (None, "")
            }
            yield line_number, read_price(record)
