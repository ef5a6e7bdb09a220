"""A catalog's columns: what each one is (its role), what it holds (its type), how it reads and in what unit.

A shop's export is not recchat's format: its columns are `sku`, `name`, `Variant Price`, `barcode`, `stock_qty`,
`noise_cancelling` written TRUE/FALSE... The schema is inferred from the file when it loads, from the columns' names
and values, and the owner can correct any of it in a small file next to the catalog (`shop.schema.toml` or
`shop.schema.json`) or in the settings (`catalog_columns`):

    [columns]
    sku = "id"                                  # a role, shortly
    name = "title"
    wt = { display = "weight", unit = "g" }     # how a fact reads, and its unit
    internal_note = "hidden"                    # never shown, searched or quoted

`recchat catalog inspect FILE` prints what was inferred. What is written by hand here is how catalogs in general
name their columns (a Shopify export's `Variant SKU`, `Body (HTML)`, `Image Src`), never a catalog's own values.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recchat.understanding.lexicon import UNIT_OF_NAME, is_stock_key, truth

Role = Literal["id", "title", "category", "description", "price", "currency", "image", "availability", "fact", "hidden"]
ColumnType = Literal["text", "category", "number", "boolean", "list", "id_like"]

CORE_ROLES: tuple[Role, ...] = ("id", "title", "category", "description", "price", "currency")
"""Roles that fill one of the item's own fields; one column each."""
ROLE_NAMES: dict[Role, list[str]] = {
    "id": ["id", "sku", "variant_sku", "item_id", "product_id", "handle", "asin", "item_code", "product_code"],
    "title": ["title", "name", "product_name", "product_title", "item_name", "product"],
    "category": [
        "category", "product_type", "category_name", "product_category", "type", "department", "categories",
    ],
    "description": ["description", "body_html", "body", "details", "long_description", "summary", "desc"],
    "price": ["price", "variant_price", "sale_price", "unit_price", "list_price", "retail_price"],
    "currency": ["currency", "currency_code"],
    "image": ["image", "image_src", "image_url", "image_link", "picture", "photo", "thumbnail", "img"],
}
"""How catalogs name a column of each role, most telling first (normalised: lower case, words joined by '_')."""
ID_LIKE = re.compile(r"^\d{8,}$")
"""Eight digits or more: a barcode, an EAN or ISBN."""
CODE = re.compile(r"^(?=.*\d)[A-Za-z0-9][\w./-]{2,39}$")
"""A code without spaces that holds a digit ("WH-1000XM6-BLK", "B0CX23V2ZK")."""
NUMERIC = re.compile(r"^-?\d+(?:\.\d+)?$")
URL = re.compile(r"^https?://", re.I)
MAX_CATEGORY_SHARE = 0.5
MAX_CATEGORY_CHARS = 40
SCHEMA_SUFFIXES = (".schema.toml", ".schema.json")


class Column(BaseModel):
    """One column of the catalog file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The column's header in the file.")
    role: Role = Field(description="What the column is for: an item field, a fact, or hidden.")
    type: ColumnType = Field(description="What its values are, inferred from them.")
    display: str = Field(description="How a fact reads: 'noise cancelling', 'battery life'.")
    unit: str | None = Field(default=None, description="The unit its numbers are in ('g', 'hours', 'gb').")
    inferred: bool = Field(default=True, description="False when the owner's overrides set the role, name or unit.")

    @property
    def key(self) -> str:
        """The attribute this column fills: the header for an inferred column (so a catalog that loads today keeps its
        keys), else the display name with its unit as the last word ('weight_g'), which is how facts read units."""
        if self.inferred:
            return self.name
        words = re.split(r"[\s_]+", self.display.strip())
        return "_".join([*words, self.unit] if self.unit else words)


class ColumnOverride(BaseModel):
    """What an owner may say of a column."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    display: str | None = Field(default=None, min_length=1, max_length=60)
    unit: str | None = Field(default=None, min_length=1, max_length=12)


Overrides = Mapping[str, "str | ColumnOverride | Mapping[str, str]"]


class CatalogSchema(BaseModel):
    """Every column of a catalog, in file order."""

    columns: list[Column]

    def role_of(self, role: Role) -> Column | None:
        return next((column for column in self.columns if column.role == role), None)

    def record(self, row: Mapping[str, Any]) -> dict:
        """A row of the file as an `Item`'s fields: the item's own fields from their columns, the facts as typed
        attributes (TRUE -> True, "265" -> 265), hidden columns left out."""
        record: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        for column in self.columns:
            value = row.get(column.name)
            if value is None or value == "" or column.role == "hidden":
                continue
            if column.role in CORE_ROLES or column.role == "image":
                record[column.role] = value
            else:
                attributes["availability" if column.role == "availability" and not is_stock_key(column.key)
                           else column.key] = typed(value, column.type)
        record["attributes"] = attributes
        return record

    def table(self) -> str:
        """The schema as `recchat catalog inspect` prints it."""
        lines = [f"{'column':<24} {'role':<13} {'type':<9} {'reads as':<22} unit  from"]
        for column in self.columns:
            source = "data" if column.inferred else "overrides"
            lines.append(f"{column.name[:24]:<24} {column.role:<13} {column.type:<9} {column.display[:22]:<22} "
                         f"{(column.unit or '-'):<5} {source}")
        return "\n".join(lines)


def typed(value: Any, column_type: ColumnType) -> Any:
    """A file's value as its column's type: a spreadsheet's TRUE a boolean, "265" a number, "a|b" a list."""
    if not isinstance(value, str):
        return value
    if column_type == "boolean" and (flag := truth(value)) is not None:
        return flag
    if column_type == "number" and NUMERIC.match(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    if "|" in value:
        return [part.strip() for part in value.split("|") if part.strip()]
    return value


def normalised(header: str) -> str:
    """'Variant SKU' -> 'variant_sku', 'Body (HTML)' -> 'body_html'."""
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "_", header.lower()).strip("_")


def infer_schema(headers: list[str], rows: list[Mapping[str, Any]]) -> CatalogSchema:
    """Each column's role and type, from its name and its values."""
    values = {header: [row[header] for row in rows if row.get(header) not in (None, "")] for header in headers}
    types = {header: _type_of(values[header]) for header in headers}
    roles: dict[str, Role] = {}
    for role, names in ROLE_NAMES.items():
        by_name = {normalised(header): header for header in headers if header not in roles}
        found = next((by_name[name] for name in names if name in by_name), None)
        if found is None and role == "price":  # "price_usd", "Variant Compare At Price"...
            found = next((h for key, h in by_name.items() if "price" in key.split("_") and types[h] == "number"), None)
        if found is not None:
            roles[found] = role
    if "id" not in roles.values():  # the first column of unique codes
        roles.update({h: "id" for h in headers[:1] if h not in roles and _unique_codes(values[h], len(rows))})
    for header in headers:
        if header in roles:
            continue
        if is_stock_key(normalised(header)):
            roles[header] = "availability"
        elif types[header] == "id_like" or values[header] and all(URL.match(str(v)) for v in values[header]):
            roles[header] = "hidden"  # barcodes, internal codes, links: never a reason a shopper reads
        else:
            roles[header] = "fact"
    return CatalogSchema(columns=[_column(header, roles[header], types[header]) for header in headers])


def _column(header: str, role: Role, column_type: ColumnType) -> Column:
    words = [word for word in re.split(r"[\s_]+", header.strip()) if word]
    unit = words[-1].lower() if role == "fact" and len(words) > 1 and words[-1].lower() in UNIT_OF_NAME else None
    display = " ".join(words[:-1] if unit else words)
    return Column(name=header, role=role, type=column_type, display=display or header, unit=unit)


def _type_of(values: list[Any]) -> ColumnType:
    texts = [str(value).strip() for value in values]
    if not texts:
        return "text"
    if all(ID_LIKE.match(text) for text in texts):
        return "id_like"
    if all(isinstance(value, bool) or truth(value) is not None for value in values):
        return "boolean"
    if all(isinstance(value, int | float) or NUMERIC.match(text) for value, text in zip(values, texts, strict=True)):
        return "number"
    if any(isinstance(value, list) or "|" in text for value, text in zip(values, texts, strict=True)):
        return "list"
    if len(texts) >= 5 and _unique_codes(texts, len(texts)):
        return "id_like"
    distinct = set(texts)
    if len(distinct) <= max(2, MAX_CATEGORY_SHARE * len(texts)) and max(map(len, distinct)) <= MAX_CATEGORY_CHARS:
        return "category"
    return "text"


def _unique_codes(values: list[Any], rows: int) -> bool:
    texts = [str(value).strip() for value in values]
    return len(texts) == rows and len(set(texts)) == rows and all(CODE.match(text) for text in texts)


def with_overrides(schema: CatalogSchema, overrides: Overrides, source: str) -> CatalogSchema:
    """The schema with the owner's corrections; a column that is not in the file, or a bad value, is a `ValueError`
    that names `source` and says what is allowed."""
    by_name = {column.name: column for column in schema.columns}
    by_normalised = {normalised(column.name): column.name for column in schema.columns}
    changed: dict[str, Column] = {}
    for name, given in overrides.items():
        header = name if name in by_name else by_normalised.get(normalised(name))
        if header is None:
            raise ValueError(f"{source}: column {name!r} is not in the catalog; its columns are {list(by_name)}")
        try:
            override = ColumnOverride(role=given) if isinstance(given, str) else ColumnOverride.model_validate(given)
        except ValidationError as error:
            roles = ", ".join(Role.__args__)  # type: ignore[attr-defined]
            raise ValueError(f"{source}: column {name!r}: {error.errors()[0]['msg']} (roles: {roles})") from None
        column = by_name[header]
        role = override.role or column.role
        changed[header] = column.model_copy(update={
            "role": role, "display": override.display or column.display, "inferred": False,
            "unit": override.unit if override.unit else column.unit if role == "fact" else None,
        })
    for header, column in list(changed.items()):  # a core role given to a column is taken from the one that had it
        if column.role in CORE_ROLES or column.role == "image":
            for other in schema.columns:
                if other.name != header and other.role == column.role and other.name not in changed:
                    changed[other.name] = other.model_copy(update={"role": "fact"})
    return CatalogSchema(columns=[changed.get(column.name, column) for column in schema.columns])


def overrides_beside(path: Path) -> tuple[dict[str, Any], str] | None:
    """The owner's overrides in `<stem>.schema.toml` or `<stem>.schema.json` next to the catalog, with that file's
    name; None when there is neither."""
    for suffix in SCHEMA_SUFFIXES:
        candidate = path.with_name(path.stem + suffix)
        if not candidate.is_file():
            continue
        try:
            text = candidate.read_text()
            data = tomllib.loads(text) if suffix.endswith("toml") else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{candidate}: not valid {suffix.rsplit('.', 1)[-1].upper()} ({error})") from None
        columns = data.get("columns") if isinstance(data, dict) else None
        if not isinstance(columns, dict):
            raise ValueError(f"{candidate}: put the columns under a [columns] table, e.g. [columns] sku = \"id\"")
        return columns, str(candidate)
    return None
