"""A shop recchat has never seen, end to end (issue #26): its raw export, a real encoder and Chroma, LLM off.
Exact names and SKUs are found (the BM25 fusion), "the lightest" and "the longest battery" order by the columns
their words name, and a category word's ending names the category."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recchat.chat import RecChat
from recchat.config import Settings
from recchat.retrieval import Retriever, in_order
from recchat.understanding.rules import RequestParser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from hybrid import write_export  # noqa: E402


@pytest.fixture(scope="module")
def shop(tmp_path_factory, encoder) -> tuple[RecChat, list[dict]]:
    folder = tmp_path_factory.mktemp("shop")
    rows = write_export(folder / "electronics.csv", 300)
    settings = Settings(catalog=str(folder / "electronics.csv"), data_dir=folder, embedding={"bridge": ""},
                        llm={"backend": "none"}, feedback={"enabled": False})
    return RecChat.from_settings(settings, encoder=encoder), rows


def first_ids(bot: RecChat, message: str) -> list[str]:
    return [item.id for item in bot.chat(message).items]


def test_an_exact_title_a_model_code_and_a_sku_find_their_item_first(shop):
    bot, rows = shop
    for row in rows[:40:4]:
        assert first_ids(bot, row["name"])[0] == row["sku"], row["name"]
        assert first_ids(bot, row["sku"])[0] == row["sku"], row["sku"]
        model = row["name"].split(" (")[0]
        found = bot.catalog[first_ids(bot, model)[0]]
        assert found.title.startswith(model + " ("), (model, found.title)


def test_the_dense_index_alone_misses_skus_that_the_fusion_finds(shop):
    bot, rows = shop
    dense = Retriever(bot.catalog, bot.retriever.index, bot.settings.retrieval.model_copy(update={"lexical_weight": 0}))
    fused = bot.retriever
    skus = [row["sku"] for row in rows[:60:3]]
    hits = {name: sum(bool(r.search(sku, k=1)) and r.search(sku, k=1)[0].item.id == sku for sku in skus)
            for name, r in (("dense", dense), ("fused", fused))}
    assert hits["fused"] == len(skus) and hits["dense"] < hits["fused"]


def test_the_lightest_and_the_longest_battery_order_by_those_columns(shop):
    bot, _ = shop
    reply = bot.chat("the lightest headphones")
    assert reply.metadata.request.state.order == "weight_g:low"
    weights = [bot.catalog[item.id].attributes["weight_g"] for item in reply.items]
    assert weights == sorted(weights)
    assert all(f"weight {weight} g" in item.reason.lower() for weight, item in zip(weights, reply.items, strict=True))
    reply = bot.chat("earbuds with the longest battery", bot.new_session())
    hours = [bot.catalog[item.id].attributes["battery_life_hours"] for item in reply.items]
    assert reply.metadata.request.state.order == "battery_life_hours:high" and hours == sorted(hours, reverse=True)


def test_bad_input_a_superlative_of_nothing_the_catalog_measures_orders_nothing(shop):
    bot, _ = shop
    assert bot.chat("the most popular headphones").metadata.request.state.order is None
    assert bot.chat("the most expensive headphones").metadata.request.state.order == "price_high"


def test_in_order_puts_items_without_the_value_last(shop):
    bot, _ = shop
    candidates = bot.retriever.search("headphones", k=6)
    ordered = in_order(candidates, "storage_gb:high")  # headphones have no storage: the order keeps them all
    assert sorted(c.item.id for c in ordered) == sorted(c.item.id for c in candidates)


def test_a_phone_after_a_monitor_stayed_in_monitors_and_now_moves_on_by_what_the_words_mean(shop):
    """#26's gap: in an export whose titles hold no kind words ("Dell S19DGF (Green)"), a follow-up naming another
    thing by a word that names no category ("phone" ends Headphones and Smartphones alike) was read as a refinement
    and searched among monitors. Its words' meaning now moves the subject; refinements stay where they were."""
    bot, _ = shop
    session = bot.new_session()
    assert {item.category for item in bot.chat("a 27 inch gaming monitor", session).items} == {"Monitors"}
    for message, category in (("a phone with the most storage", "Smartphones"),
                              ("noise cancelling gaming headset", "Headphones")):
        reply = bot.chat(message, session)
        assert {item.category for item in reply.items} == {category}, message
        assert not reply.metadata.request.follow_up and f"moving on to {category}" in reply.metadata.request.notes
    for refinement in ("with a bigger screen", "a bigger one", "curved", "something for gaming", "in white"):
        laptops = bot.new_session()
        bot.chat("a laptop", laptops)
        reply = bot.chat(refinement, laptops)
        assert reply.metadata.request.state.category == "Laptops" and reply.metadata.request.follow_up, refinement


def test_a_category_words_ending_names_it_and_a_shared_ending_names_none():
    parser = RequestParser(["Smartphones", "Headphones", "Smartwatches", "Laptops"])
    assert parser.parse("a watch for running").constraints.category == "Smartwatches"
    assert parser.parse("a new laptop").constraints.category == "Laptops"
    assert parser.parse("a phone").constraints.category is None  # "phone" ends both Smartphones and Headphones


def test_light_orders_by_weight_where_a_column_weighs_and_light_is_no_value(shop, products):
    from recchat.understanding import CatalogLexicon

    bot, _ = shop
    assert bot.chat("light wireless headphones", bot.new_session()).metadata.request.state.order == "weight_g:low"
    demo = RequestParser(products.categories(), lexicon=CatalogLexicon.from_items(list(products)))
    assert demo.parse("a light jacket").state.order is None  # the demo shop weighs nothing: "light" stays a word


PLANT_KINDS = {  # Type -> title endings; "Plant" ends only succulents' titles, as in the trial's Shopify export
    "Succulents": ["Jade Plant", "Snake Plant", "Aloe Vera"],
    "Tropical": ["Monstera", "Calathea", "Fiddle Leaf Fig"],
    "Ferns": ["Boston Fern", "Bird's Nest Fern"],
}


@pytest.fixture(scope="module")
def plants(tmp_path_factory, encoder) -> RecChat:
    """A house-plant shop: Shopify's column names, yes/no `pet_safe`, `height_cm`, no colour but the pot's."""
    folder = tmp_path_factory.mktemp("plants")
    rows = ["Handle,Title,Type,Variant Price,pet_safe,height_cm,pot_colour"]
    for kind, titles in PLANT_KINDS.items():
        for n, title in enumerate(titles * 4):
            size = ["Small", "Medium", "Large", "Tall"][n % 4]
            pet_safe = "yes" if (n + len(title)) % 3 else "no"
            rows.append(f"pl-{len(rows):03},{size} {title},{kind},${12 + 7 * n}.00,{pet_safe},{20 + 35 * (n % 5)},"
                        f"{['white', 'black', 'terracotta'][n % 3]}")
    (folder / "plants.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    settings = Settings(catalog=str(folder / "plants.csv"), data_dir=folder, embedding={"bridge": ""},
                        llm={"backend": "none"}, feedback={"enabled": False})
    return RecChat.from_settings(settings, encoder=encoder)


def test_the_catalogs_own_name_is_no_kind_so_a_plant_is_not_only_a_succulent(plants):
    """Trial of issue #26: "a pet safe plant" was filtered to Succulents, the only kind titled "... Plant"."""
    reply = plants.chat("a pet safe plant")
    assert reply.metadata.request.constraints.category is None
    assert len({item.category for item in reply.items}) >= 2


def test_a_feature_said_is_required_and_its_absence_is_marked_on_the_nearest(plants):
    """A true/false column said ("pet safe") filters, as "noise cancelling" should: it used to only rank first."""
    reply = plants.chat("a pet safe plant")
    assert reply.items and all(plants.catalog[item.id].attributes["pet_safe"] is True for item in reply.items)
    none_safe = RecChat.from_settings(plants.settings, encoder=plants.retriever.index.encoder, catalog=plants.catalog)
    for item in none_safe.catalog:
        item.attributes["pet_safe"] = False
    nearest = none_safe.chat("a pet safe plant")
    assert nearest.items and all(item.unmet == ["pet safe"] for item in nearest.items)
    assert "nearest" in nearest.message


def test_tall_orders_by_the_column_that_measures_height(plants):
    reply = plants.chat("a tall pet safe plant")
    assert reply.metadata.request.state.order == "height_cm:high"
    heights = [plants.catalog[item.id].attributes["height_cm"] for item in reply.items]
    assert heights == sorted(heights, reverse=True) and "tall" not in reply.metadata.request.query.split()


def test_a_wish_no_candidate_meets_is_said_and_one_that_some_meet_is_not(products, encoder, tmp_path):
    settings = Settings(data_dir=tmp_path, embedding={"bridge": ""}, llm={"backend": "none"},
                        feedback={"enabled": False})
    bot = RecChat.from_settings(settings, encoder=encoder, catalog=products)
    session = bot.new_session()
    bot.chat("I need a warm jacket for my wife", session)
    blue = bot.chat("in blue", session)
    assert not any("blue" in str(bot.catalog[item.id].attributes.get("color", "")) for item in blue.items)
    assert "None of the closest matches is blue." in blue.message
    black = bot.chat("a warm jacket for my wife in black", bot.new_session())
    assert any("black" in str(bot.catalog[item.id].attributes.get("color", "")) for item in black.items)
    assert "None of the closest matches" not in black.message
