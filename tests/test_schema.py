"""A shop's own export loads without renaming a column (issue #26): the schema is inferred from the file, the owner
corrects it beside the file or in the settings, and facts read as a shopper would."""

from __future__ import annotations

import csv
import json

import pytest

from recchat.catalog import load_catalog, load_configured_catalog, schema_of
from recchat.cli import main
from recchat.config import Settings
from recchat.errors import CatalogError
from recchat.facts import fact_phrases, fact_reason

HEADER = [
    "sku", "name", "brand", "category", "price", "wireless", "noise_cancelling", "battery_life_hours", "weight_g",
    "storage_gb", "screen_size_in", "colour", "stock_qty", "barcode", "image_url",
]
ROWS = [
    ["SNY-WH1000XM6-B", "Sony WH-1000XM6", "Sony", "Headphones", "$449.00", "TRUE", "TRUE", "30", "254", "", "",
     "Black", "12", "4548736164181", "https://cdn.example.com/xm6.jpg"],
    ["BOS-QCU-W", "Bose QuietComfort Ultra", "Bose", "Headphones", "$429.00", "TRUE", "FALSE", "24", "250", "", "",
     "White", "0", "0017817847285", "https://cdn.example.com/qcu.jpg"],
    ["ASU-ZB14-512", "Asus ZenBook 14 OLED", "Asus", "Laptops", "$1,299.00", "TRUE", "FALSE", "15", "1200", "512",
     "14", "Blue", "3", "4711387447325", ""],
    ["APL-MBA15-256", "Apple MacBook Air 15", "Apple", "Laptops", "$1,099.00", "TRUE", "FALSE", "18", "1510", "256",
     "15.3", "Silver", "7", "0195949257023", ""],
    ["GGL-PX10-128", "Google Pixel 10", "Google", "Smartphones", "$799.00", "TRUE", "FALSE", "28", "198", "128",
     "6.3", "Black", "20", "0840353902245", ""],
]


def write_export(path, header=HEADER, rows=ROWS):
    """The file as Excel's "CSV UTF-8" writes it: with a byte-order mark."""
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_a_raw_export_loads_without_renaming_a_column(tmp_path):
    catalog = load_catalog(write_export(tmp_path / "shop.csv"))
    roles = {column.name: column.role for column in catalog.schema.columns}
    assert roles["sku"] == "id" and roles["name"] == "title" and roles["category"] == "category"
    assert roles["barcode"] == "hidden" and roles["stock_qty"] == "availability" and roles["image_url"] == "image"
    laptop = catalog["ASU-ZB14-512"]
    assert (laptop.title, laptop.price, laptop.currency) == ("Asus ZenBook 14 OLED", 1299.0, "USD")
    assert laptop.attributes["wireless"] is True and laptop.attributes["noise_cancelling"] is False
    assert laptop.attributes["storage_gb"] == 512 and laptop.attributes["screen_size_in"] == 14
    assert "barcode" not in laptop.attributes  # a code is never a fact, nor searched
    assert catalog["SNY-WH1000XM6-B"].image == "https://cdn.example.com/xm6.jpg" and laptop.image is None


def test_facts_read_as_a_shopper_would(tmp_path):
    catalog = load_catalog(write_export(tmp_path / "shop.csv"))
    headphones, laptop = catalog["SNY-WH1000XM6-B"], catalog["ASU-ZB14-512"]
    assert "noise cancelling" in fact_phrases(headphones) and "battery life 30 hours" in fact_phrases(headphones)
    assert {"storage 512 GB", "screen size 14 inches", "weight 1200 g"} <= set(fact_phrases(laptop))
    # a false boolean is never a reason, nor in the text that is searched; stock and codes are never quoted
    assert not any("noise" in phrase for phrase in fact_phrases(laptop))
    assert "noise" not in laptop.embedding_text() and "4711387447325" not in laptop.embedding_text()
    assert not any("stock" in phrase or "4711387447325" in phrase for phrase in fact_phrases(laptop))
    assert "noise" not in fact_reason(laptop, "noise cancelling laptop").lower()


def test_the_owner_corrects_the_schema_in_a_file_beside_the_catalog(tmp_path):
    header = ["code", "label", "dept", "wt", "note"]
    rows = [[f"X{n}", f"Trail shoe {n}", "Shoes", str(300 + n), f"note {n}"] for n in range(6)]
    path = write_export(tmp_path / "shop.csv", header, rows)
    (tmp_path / "shop.schema.toml").write_text(
        '[columns]\ncode = "id"\nlabel = "title"\ndept = "category"\n'
        'wt = { display = "weight", unit = "g" }\nnote = "hidden"\n'
    )
    catalog = load_catalog(path)
    shoe = catalog["X2"]
    assert (shoe.title, shoe.category) == ("Trail shoe 2", "Shoes")
    assert shoe.attributes == {"weight_g": 302} and "weight 302 g" in fact_phrases(shoe)
    assert all(not column.inferred for column in catalog.schema.columns)


def test_settings_name_columns_too_and_win_over_the_file(tmp_path):
    path = write_export(tmp_path / "shop.csv")
    (tmp_path / "shop.schema.json").write_text(json.dumps({"columns": {"brand": "hidden"}}))
    settings = Settings(catalog=str(path), data_dir=tmp_path, catalog_columns={"brand": "fact", "colour": "hidden"})
    item = load_configured_catalog(settings)["GGL-PX10-128"]
    assert item.attributes["brand"] == "Google" and "colour" not in item.attributes


def test_giving_a_column_a_core_role_takes_it_from_the_column_that_had_it(tmp_path):
    path = write_export(tmp_path / "shop.csv")
    catalog = load_catalog(path, columns={"brand": "category"})
    assert catalog["GGL-PX10-128"].category == "Google"
    assert catalog["GGL-PX10-128"].attributes["category"] == "Smartphones"  # still a fact, no longer the category


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nope": "hidden"}, "column 'nope' is not in the catalog"),
        ({"brand": "secret"}, "roles: id, title"),
        ({"brand": {"role": "fact", "colour": "red"}}, "column 'brand'"),
    ],
)
def test_bad_input_overrides_that_name_no_column_or_no_role_are_refused(tmp_path, overrides, message):
    with pytest.raises(CatalogError, match=message):
        load_catalog(write_export(tmp_path / "shop.csv"), columns=overrides)


def test_bad_input_a_schema_file_that_is_not_toml_is_refused(tmp_path):
    path = write_export(tmp_path / "shop.csv")
    (tmp_path / "shop.schema.toml").write_text("columns = [\n")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(path)
    (tmp_path / "shop.schema.toml").write_text('sku = "id"\n')
    with pytest.raises(CatalogError, match=r"\[columns\] table"):
        load_catalog(path)


def test_bad_input_a_file_without_a_title_column_says_how_to_name_one(tmp_path):
    path = write_export(tmp_path / "shop.csv", ["sku", "label", "category"], [["A1", "x", "c"], ["A2", "y", "c"]])
    with pytest.raises(CatalogError, match=r'shop.schema.toml, e.g. \[columns\] your_column = "title"'):
        load_catalog(path)


def test_a_flat_jsonl_export_loads_like_a_csv(tmp_path):
    path = tmp_path / "shop.jsonl"
    path.write_text("\n".join(json.dumps(dict(zip(HEADER, row, strict=True))) for row in ROWS) + "\n")
    assert load_catalog(path)["BOS-QCU-W"].attributes["noise_cancelling"] is False


def test_catalog_inspect_prints_the_schema(tmp_path, capsys):
    path = write_export(tmp_path / "shop.csv")
    assert main(["catalog", "inspect", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "barcode" in printed and "hidden" in printed and "battery life" in printed and "5 items" in printed
    assert schema_of(path).role_of("title").name == "name"
