"""Catalog files (JSONL or CSV) -> validated `Item`s. All or nothing: a bad row loads no row.

JSONL: one object per line, with the `Item` fields or flat like a CSV row. CSV: a header and a row per item. Which
column is the id, the title, the category, the price... and how each fact reads is the catalog's schema
(`recchat.schema`): inferred from the file, corrected by `<stem>.schema.toml` next to it or `catalog_columns` in the
settings. A value with '|' in it becomes a list ("wool|cashmere").
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
from recchat.schema import CatalogSchema, Overrides, infer_schema, overrides_beside, with_overrides


class Catalog:
    """Items of one catalog, by id, in file order."""

    def __init__(
        self, name: str, items: Iterable[Item], index_name: str | None = None, schema: CatalogSchema | None = None
    ):
        self.name = name
        self.schema = schema
        """The columns of the file it was loaded from (None for items given in code)."""
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
    """The catalog `settings.catalog` names, loaded and validated, with the settings' `catalog_columns`."""
    path = resolve_catalog_path(settings.catalog, settings)
    return load_resolved(settings.catalog, path, settings.catalog_columns)


def load_resolved(name_or_path: str, path: Path, columns: Overrides | None = None) -> Catalog:
    """The catalog a name or path was resolved to (`path`), named after its file, its index named by
    `index_name_of`."""
    catalog = load_catalog(path, name=path.stem, columns=columns)
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


def load_catalog(path: str | Path, name: str | None = None, columns: Overrides | None = None) -> Catalog:
    """Load and validate every row; raise `CatalogError` listing all bad rows. `columns` corrects the inferred
    schema, after the overrides in a `<stem>.schema.toml` (or .json) beside the file."""
    path = Path(path)
    if not path.is_file():
        raise CatalogNotFoundError(f"catalog file {path} does not exist")
    _check_utf8(path)
    if path.suffix == ".jsonl":
        read = list(_jsonl_rows(path))
    elif path.suffix == ".csv":
        read = list(_csv_rows(path))
    else:
        raise CatalogError([CatalogProblem(str(path), 0, "-", "unsupported file type; use .jsonl or .csv")])
    schema = _schema(path, [row for _, row in read if not isinstance(row, CatalogProblem)], columns)
    rows = [(line, row if isinstance(row, CatalogProblem) else _beside(path, read_price(schema.record(row))))
            for line, row in read]

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
    return Catalog(name or path.stem, items, schema=schema)


def _beside(path: Path, record: dict) -> dict:
    """The record with a picture given as a path relative to the catalog made absolute (the app runs elsewhere)."""
    image = record.get("image")
    if isinstance(image, str) and "://" not in image and not Path(image).is_absolute():
        record["image"] = str((path.parent / image).resolve())
    return record


def schema_of(path: str | Path, columns: Overrides | None = None) -> CatalogSchema:
    """A catalog file's schema, inferred and corrected, without loading its items (`recchat catalog inspect`)."""
    path = Path(path)
    if not path.is_file():
        raise CatalogNotFoundError(f"catalog file {path} does not exist")
    _check_utf8(path)
    read = _jsonl_rows(path) if path.suffix == ".jsonl" else _csv_rows(path)
    return _corrected(path, [row for _, row in read if not isinstance(row, CatalogProblem)], columns)


def _schema(path: Path, rows: list[dict], columns: Overrides | None) -> CatalogSchema:
    """The file's schema; a `CatalogError` when no column can be the id, the title or the category."""
    schema = _corrected(path, rows, columns)
    missing = [role for role in ("id", "title", "category") if schema.role_of(role) is None]
    if missing and rows:
        beside = path.with_name(path.stem + ".schema.toml").name
        raise CatalogError([CatalogProblem(
            str(path), 1, ",".join(missing),
            f"no column found for the item's {' and '.join(missing)}; name it in {beside}, e.g. "
            f'[columns] your_column = "{missing[0]}" (columns: {[column.name for column in schema.columns]})',
        )])
    return schema


def _corrected(path: Path, rows: list[dict], columns: Overrides | None) -> CatalogSchema:
    """The inferred schema with the overrides beside the file, then the settings' (a `CatalogError` if wrong)."""
    schema = infer_schema(list(dict.fromkeys(header for row in rows for header in row)), rows)
    try:
        corrections = [overrides_beside(path)] + ([(columns, "settings catalog_columns")] if columns else [])
        for overrides, source in filter(None, corrections):
            schema = with_overrides(schema, overrides, source)
    except ValueError as error:
        raise CatalogError([CatalogProblem(str(path), 0, "-", str(error))]) from None
    return schema


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
    """Each line as a flat row: an `Item`-shaped object's attributes sit beside its own fields."""
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
            attributes = row.pop("attributes", None)
            if attributes is not None and not isinstance(attributes, dict):
                yield line_number, CatalogProblem(str(path), line_number, "attributes", "must be a JSON object")
                continue
            if attributes is not None and (typos := sorted(set(row) - set(Item.model_fields))):
                # with its facts under "attributes", a field of its own that Item lacks is a typo ("colour")
                yield line_number, CatalogProblem(str(path), line_number, typos[0], "Extra inputs are not permitted")
                continue
            yield line_number, {**row, **(attributes or {})}


def _csv_rows(path: Path) -> Iterator[tuple[int, dict | CatalogProblem]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:  # Excel's "CSV UTF-8" starts with a byte-order mark
        reader = csv.DictReader(handle)
        for row in reader:
            line_number = reader.line_num
            if None in row:
                yield line_number, CatalogProblem(str(path), line_number, "-", "more values than header columns")
                continue
            yield line_number, dict(row)  # empty cells kept: the first row then gives the header's column order
