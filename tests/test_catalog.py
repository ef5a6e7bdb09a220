import json
import subprocess
import sys

import pytest

from recchat.catalog import Catalog, load_catalog, resolve_catalog_path
from recchat.config import BUNDLED_CATALOG_DIR, Settings
from recchat.errors import CatalogError, CatalogNotFoundError
from recchat.models import Item

GOOD = {"id": "x1", "title": "Wool Scarf", "category": "accessories", "price": 30, "currency": "USD",
        "attributes": {"material": "wool"}}


def write_jsonl(path, rows):
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n")
    return path


def test_demo_catalog_is_large_varied_and_valid(products):
    assert len(products) >= 200
    assert len(products.categories()) >= 8
    assert len({item.title for item in products}) == len(products)
    assert all(item.price and item.currency == "USD" and item.description for item in products)
    assert {"winter", "summer"} <= {item.attributes["season"] for item in products}


@pytest.mark.parametrize("name", ["products", "products-zh"])
def test_committed_demo_catalog_matches_its_generator(name):
    script = BUNDLED_CATALOG_DIR / f"make_{name.replace('-', '_')}.py"
    generated = subprocess.run(
        [
            sys.executable, "-c",
            f"import runpy; m = runpy.run_path({str(script)!r}); print(m['render'](m['build_items']()), end='')",
        ],
        capture_output=True, text=True, check=True,
    ).stdout
    assert generated == (BUNDLED_CATALOG_DIR / f"{name}.jsonl").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "bad_row, field, words",
    [
        ('{"id": "x2", "title": "Broken', "-", "not valid JSON"),  # broken row
        ({"id": "x2", "category": "shoes"}, "title", "Field required"),  # missing field
        ({**GOOD, "id": "x2", "price": "cheap"}, "price", "number"),  # wrong type
        ({**GOOD, "id": "x2", "price": -5}, "price", "greater than or equal"),  # impossible value
        ({**GOOD, "id": "x2", "colour": "red"}, "colour", "Extra inputs"),  # unknown field (typo)
        ({**GOOD}, "id", "duplicate id 'x1' (first on line 1)"),  # duplicate id
        ('["not", "an", "object"]', "-", "JSON object"),
    ],
)
def test_bad_jsonl_row_names_file_line_field_and_loads_nothing(tmp_path, bad_row, field, words):
    path = write_jsonl(tmp_path / "shop.jsonl", [GOOD, bad_row])
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.field) == (str(path), 2, field)
    assert words in problem.message
    assert f"{path}:2: field '{field}'" in str(caught.value)


def test_every_bad_row_is_reported_at_once(tmp_path):
    path = write_jsonl(tmp_path / "shop.jsonl", [GOOD, "{", {"id": "y"}, GOOD])
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert sorted({p.line for p in caught.value.problems}) == [2, 3, 4]


def test_csv_catalog_with_attributes_and_lists(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("id,title,category,price,currency,material,colors\n"
                    "c1,Alpaca Scarf,accessories,45.5,EUR,alpaca,grey|red\n"
                    "c2,Rain Boots,shoes,,,rubber,\n")
    catalog = load_catalog(path)
    assert catalog["c1"].price == 45.5 and catalog["c1"].attributes == {"material": "alpaca", "colors": ["grey", "red"]}
    assert catalog["c2"].price is None and catalog["c2"].attributes == {"material": "rubber"}


def test_an_excel_export_with_a_byte_order_mark_and_written_prices_loads(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_bytes(
        "id,title,category,price\n"
        'c1,Laptop,computers,"$1,299.00"\n'
        "c2,Cable,accessories,12.50 €\n"
        "c3,Mouse,accessories,25\n".encode("utf-8-sig")
    )
    catalog = load_catalog(path)
    assert (catalog["c1"].price, catalog["c1"].currency) == (1299.0, "USD")
    assert (catalog["c2"].price, catalog["c2"].currency) == (12.5, "EUR")
    assert (catalog["c3"].price, catalog["c3"].currency) == (25.0, None)


def test_a_jsonl_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "shop.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "a", "title": "Scarf", "category": "x"}).encode() + b"\n")
    assert load_catalog(path)["a"].title == "Scarf"


@pytest.mark.parametrize("price", ["12,50", "$1,2,3", "1.299,00", "about $5"])
def test_bad_input_a_written_price_that_is_no_clear_amount_is_refused(tmp_path, price):
    path = tmp_path / "shop.csv"
    path.write_text(f'id,title,category,price\nc1,Scarf,accessories,"{price}"\n')
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert (caught.value.problems[0].line, caught.value.problems[0].field) == (2, "price")


@pytest.mark.parametrize(
    "text, line, field",
    [
        ("id,title\nc1,Scarf\n", 1, "category"),  # required column missing from the header
        ("id,title,category\nc1,Scarf,accessories,extra\n", 2, "-"),  # more values than columns
        ("id,title,category,price\nc1,Scarf,accessories,ten\n", 2, "price"),  # wrong type
    ],
)
def test_bad_csv(tmp_path, text, line, field):
    path = tmp_path / "shop.csv"
    path.write_text(text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert (caught.value.problems[0].line, caught.value.problems[0].field) == (line, field)


def test_missing_empty_and_unknown_catalogs(tmp_path):
    with pytest.raises(CatalogNotFoundError):
        load_catalog(tmp_path / "none.jsonl")
    with pytest.raises(CatalogError, match="no items"):
        load_catalog(write_jsonl(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(CatalogNotFoundError, match="recchat catalog build-movies"):
        resolve_catalog_path("movies", Settings(data_dir=tmp_path))
    assert resolve_catalog_path("products", Settings(data_dir=tmp_path)).name == "products.jsonl"


def test_item_text_and_hash_follow_content():
    item = Item.model_validate(GOOD)
    assert "made of wool" in item.embedding_text() and item.embedding_text().endswith("$30")  # as a reason reads it
    codes = {"stock_qty": 12, "ean": "4006381333931"}
    stocked = Item.model_validate({**GOOD, "attributes": {**GOOD["attributes"], **codes}})
    assert "12" not in stocked.embedding_text() and "4006381333931" not in stocked.embedding_text()
    assert item.content_hash() == Item.model_validate(GOOD).content_hash()
    assert item.content_hash() != Item.model_validate({**GOOD, "price": 31}).content_hash()
    with pytest.raises(ValueError, match="duplicate"):
        Catalog("c", [item, item])


def test_two_shops_files_of_the_same_name_never_share_an_index(tmp_path, encoder):
    """Issue: indexing other/shop.csv removed shop.csv's vectors, both being indexed as "shop"."""
    from recchat.catalog import load_configured_catalog
    from recchat.retrieval import synced_index

    shops = []
    for folder, titles in (("one", ["Alpaca Scarf", "Wool Hat"]), ("two", ["Rain Boots", "Garden Hose", "Rake"])):
        path = tmp_path / folder / "shop.csv"
        path.parent.mkdir()
        rows = "".join(f"{folder}{n},{title},things\n" for n, title in enumerate(titles))
        path.write_text("id,title,category\n" + rows, encoding="utf-8")
        shops.append(Settings(data_dir=tmp_path / "data", catalog=str(path)))
    one, two = (load_configured_catalog(shop) for shop in shops)
    assert one.name == two.name == "shop" and one.index_name != two.index_name
    first = synced_index(shops[0], one, encoder)
    synced_index(shops[1], two, encoder)
    assert first.count() == 2  # the second shop's sync left the first shop's vectors alone
    assert load_configured_catalog(Settings(catalog="products")).index_name == "products"  # bundled: as before
