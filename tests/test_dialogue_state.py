"""The dialogue state over the catalog's own facets: the lexicon built from any catalog, what a message says of it,
the merge rules, and whole conversations through the real engine (encoder, Chroma, no LLM)."""

import pytest

from recchat.catalog import Catalog, load_catalog
from recchat.chat import RecChat
from recchat.errors import InvalidArgumentError, UnknownSessionError
from recchat.models import Item, ShoppingState
from recchat.retrieval import unmet_facets
from recchat.understanding import CatalogLexicon, RequestParser, StateChange, merge, release
from recchat.understanding.state import MAX_EXCLUDED_IDS, MAX_SUBJECT_WORDS, MAX_VALUES
from tests.conftest import ScriptedBackend

FURNITURE = """id,title,category,price,who,colour,material,weight_kg,foldable,seats
{rows}
"""
KINDS = [("Armchair", "seating"), ("Sofa", "seating"), ("Desk", "tables"), ("Dining Table", "tables"),
         ("Bookcase", "storage")]
COLOURS = ["oak brown", "walnut", "white", "dark grey", "sage green"]


def furniture_rows() -> str:
    rows = []
    for n in range(50):
        kind, category = KINDS[n % len(KINDS)]
        who = ["adults", "kids"][n % 2]
        rows.append(
            f"F{n:03d},{['Nordvik', 'Larsen', 'Hallo'][n % 3]} {kind} {n},{category},{100 + 17 * n},{who},"
            f"{COLOURS[n % 5]},{['pine', 'birch', 'steel'][n % 3]},{5 + n % 20}.5,{['yes', 'no'][n % 2]},{1 + n % 4}"
        )
    return "\n".join(rows)


@pytest.fixture(scope="module")
def furniture(tmp_path_factory) -> Catalog:
    """A catalog recchat has never seen: another domain, other column names, CSV booleans, a unit in a name."""
    path = tmp_path_factory.mktemp("shop") / "furniture.csv"
    path.write_text(FURNITURE.format(rows=furniture_rows()), encoding="utf-8")
    return load_catalog(path)


@pytest.fixture(scope="module")
def lexicon(products) -> CatalogLexicon:
    return CatalogLexicon.from_items(products)


@pytest.fixture(scope="module")
def parser(products, lexicon) -> RequestParser:
    return RequestParser(products.categories(), ((item.id, item.title) for item in products), lexicon=lexicon)


def conversation(parser, *messages):
    request = None
    for message in messages:
        request = parser.parse(message, request)
    return request


# --- the lexicon, from the catalog's own data ------------------------------------------------------------------------

def test_facets_are_found_by_what_their_values_are_not_by_their_names(lexicon, furniture):
    assert (lexicon.audience.name, lexicon.colour.name) == ("for", "color")
    assert lexicon.facets["waterproof"].kind == "boolean" and lexicon.facets["season"].kind == "value"
    shop = CatalogLexicon.from_items(furniture)
    assert shop.audience is not None and shop.audience.name == "who"  # "adults"/"kids": an audience by its values
    assert shop.colour is not None and shop.colour.name == "colour"
    assert shop.facets["foldable"].kind == "boolean"  # yes/no in a CSV
    weight = shop.facets["weight_kg"]
    assert (weight.kind, weight.dimension, weight.scale, weight.label) == ("numeric", "mass", 1000, "weight")
    assert "seats" not in shop.facets  # a number with no unit a shopper could say
    assert shop.kinds["armchair"] == "seating" and shop.kinds["bookcase"] == "storage"
    assert "nordvik" not in shop.kinds  # a brand spans the categories: not a kind


def test_kinds_in_chinese_titles_are_what_follows_the_brand_and_line(products_zh):
    lexicon = CatalogLexicon.from_items(products_zh)
    assert lexicon.cjk_kinds["羽绒服"] == "外套"
    assert lexicon.kind_words(products_zh["Z0001"]) == "羽绒服"
    assert lexicon.audience.name == "适合" and lexicon.colour.name == "颜色"


def test_the_movie_catalogs_genres_and_years_are_facets():
    films = [
        Item(id=f"m{n}", title=f"Film {n} ({1970 + n})", category="movies",
             attributes={"genres": [["Comedy", "Drama", "Horror"][n % 3]], "year": 1970 + n, "director": f"D{n}"})
        for n in range(40)
    ]
    lexicon = CatalogLexicon.from_items(films)
    assert lexicon.facets["genres"].kind == "value" and lexicon.facets["year"].dimension == "year"
    assert "director" not in lexicon.facets  # one value per film: nobody asks for one of forty
    parser = RequestParser(["movies"], lexicon=lexicon)
    request = parser.parse("a comedy from the 90s")
    assert request.preferences == {"genres": ["Comedy"]} and request.constraints.ranges == {"year": (1990, 1999)}
    assert parser.parse("a horror film made before 1980").constraints.ranges == {"year": (None, 1979)}


DIRECTORS = ["Michael Mann", "Kathryn Bigelow", "J.J. Abrams", "Agnès Varda"]


def letters(n: int) -> str:
    """A distinct run of letters per number ("B", "Be"...): names made of letters only."""
    return chr(65 + n % 26) + "e" * (n // 26)


@pytest.fixture(scope="module")
def films() -> list[Item]:
    return [
        Item(id=f"f{n}", title=f"Film {n} ({1970 + n})", category="movies",
             attributes={"genres": [["Crime", "Drama", "Horror"][n % 3]], "year": 1970 + n,
                         "director": DIRECTORS[n] if n < 4 else f"Jo {letters(n)}anson",
                         "cast": [f"Ann {letters(n)} Jones", f"Bo {letters(n)}ell", "Val Kilmer"],
                         "sku": f"SKU-{n:05d}", "blurb": f"A long story number {n} about things, told well."})
        for n in range(40)
    ]


def test_names_a_director_or_an_actor_filter_like_who_it_is_for(films):
    """Directors and actors: too many values to be facets, so each value is a name looked up in messages."""
    lexicon = CatalogLexicon.from_items(films)
    assert lexicon.facets["director"].kind == "name" and lexicon.facets["cast"].kind == "name"
    assert "sku" not in lexicon.facets and "blurb" not in lexicon.facets  # ids and prose are no names
    parser = RequestParser(["movies"], lexicon=lexicon)
    request = parser.parse("a crime film by michael mann with Val Kilmer")
    assert request.constraints.named == {"director": ["Michael Mann"], "cast": ["Val Kilmer"]}
    assert request.preferences == {"genres": ["Crime"]}
    assert parser.parse("anything by J.J. Abrams.").constraints.named == {"director": ["J.J. Abrams"]}
    assert parser.parse("something by Agnès Varda").constraints.named == {"director": ["Agnès Varda"]}
    # an item without the attribute is not by them (an item without "who it is for" passes that facet)
    unknown = films[0].model_copy(update={"attributes": {"genres": ["Crime"]}})
    assert unmet_facets(unknown, request.constraints) and not unmet_facets(films[0], request.constraints)
    # a string that joins two names holds each of them
    two = films[0].model_copy(update={"attributes": {"director": "Jo Xanson, Michael Mann", "cast": ["Val Kilmer"]}})
    assert not unmet_facets(two, request.constraints)


def test_bad_input_a_name_said_with_not_is_left_out_not_filtered_for(films):
    parser = RequestParser(["movies"], lexicon=CatalogLexicon.from_items(films))
    for message in ("a crime film, not by Michael Mann", "nothing with Val Kilmer", "anything but Kathryn Bigelow"):
        request = parser.parse(message)
        assert request.constraints.named == {} and len(request.constraints.excluded_terms) == 1, message
    assert parser.parse("not by Michael Mann").constraints.excluded_terms == ["michael mann"]  # the whole name
    assert parser.parse("Michael Mann's films").constraints.named == {"director": ["Michael Mann"]}
    assert "by" not in parser.parse("a crime film by Michael Mann").query.split()  # the cue goes with the name


def test_with_the_model_reading_alone_names_are_still_read_by_the_rules(films):
    parser = RequestParser(["movies"], lexicon=CatalogLexicon.from_items(films))
    request = parser.parse("a drama by Michael Mann", model_read={"genres": ["drama"]}, model_only=True)
    assert request.constraints.named == {"director": ["Michael Mann"]} and request.preferences == {"genres": ["Drama"]}


def test_a_name_held_only_inside_joined_strings_is_found_through_the_engine(tmp_path, encoder, films):
    from recchat.catalog import Catalog
    from recchat.config import Settings

    def with_coen(film: Item) -> Item:
        director = f"{film.attributes['director']}, Ed Coen"
        return film.model_copy(update={"attributes": {**film.attributes, "director": director}})

    joined = [with_coen(film) for film in films[4:8]]
    catalog = Catalog("films", [*films[:4], *joined, *films[8:]])
    settings = Settings(
        data_dir=tmp_path, embedding={"bridge": ""}, llm={"backend": "none"}, feedback={"enabled": False}
    )
    bot = RecChat.from_settings(settings, encoder=encoder, catalog=catalog)
    reply = bot.chat("a film by Ed Coen")
    assert {item.id for item in reply.items} == {film.id for film in joined} and "nearest" not in reply.message


def test_bad_input_a_name_the_catalog_does_not_have_or_half_a_name_is_no_filter(films):
    parser = RequestParser(["movies"], lexicon=CatalogLexicon.from_items(films))
    assert parser.parse("something by Michael Bay").constraints.named == {}
    assert parser.parse("a film like mann's").constraints.named == {}


# --- one message -----------------------------------------------------------------------------------------------------

def test_everything_said_in_one_message(parser):
    request = parser.parse("winter boots for women in black under $190")
    constraints = request.constraints
    assert (constraints.category, constraints.max_price) == ("shoes", 190)
    assert constraints.facets == {"for": ["women", "unisex"]}  # hard: a unisex item is for women too
    assert request.preferences["color"] == ["black"] and request.preferences["season"] == ["winter"]  # soft


@pytest.mark.parametrize(
    "message, group",
    [("something for my wife", "women"), ("ladies' please", "women"), ("for my mother", "women"),
     ("for my daughter", "women"), ("it's for my son", "kids"), ("children", "kids"), ("for my dad", "men"),
     ("是给我老婆买的", "women"), ("儿童的", "kids")],
)
def test_ways_of_saying_whom_it_is_for(parser, message, group):
    assert parser.parse(message).state.wants == {"for": [group]}


def test_dark_blue_is_the_catalogs_navy_and_only_makes_a_wish_a_filter(parser):
    assert parser.parse("a sweater in dark blue").preferences["color"] == ["navy"]
    only = parser.parse("a sweater, only in black")
    assert only.constraints.facets["color"] == ["black"] and "color" not in only.preferences


def test_bad_input_a_colour_the_catalog_does_not_have_says_so_and_wishes_for_the_nearest(parser):
    request = parser.parse("a coat in fuchsia")
    assert any("fuchsia" in note for note in request.notes)
    assert request.preferences["color"] and all(value in ("pink", "coral") for value in request.preferences["color"])


def test_bad_input_a_facet_word_inside_a_title_is_a_name_not_a_wish(products):
    tote = Item(id="T1", title="Women's Day Tote", category="accessories", price=30, attributes={"for": "unisex"})
    catalog = Catalog("with-tote", [*products, tote])
    lexicon = CatalogLexicon.from_items(catalog)
    parser = RequestParser(catalog.categories(), ((item.id, item.title) for item in catalog), lexicon=lexicon)
    request = parser.parse("do you have the women's day tote")
    assert request.constraints.facets == {} and "women's day tote" in request.query.lower()


@pytest.mark.parametrize(
    "message, low, high",
    [("a desk under 12 kg", None, 12), ("a desk under 0.5 kg", None, 0.5), ("an armchair of at least 8000 g", 8, None),
     ("a sofa between 10 and 15 kg", 10, 15), ("a sofa lighter than 20 lbs", None, 9.072)],
)
def test_bad_input_numbers_with_odd_units_limit_the_numeric_facet_and_are_no_price(furniture, message, low, high):
    lexicon = CatalogLexicon.from_items(furniture)
    request = RequestParser(furniture.categories(), lexicon=lexicon).parse(message)
    (got_low, got_high), = request.constraints.ranges.values()
    assert got_low == pytest.approx(low) if low is not None else got_low is None
    assert got_high == pytest.approx(high) if high is not None else got_high is None
    assert request.constraints.max_price is None and request.constraints.min_price is None


def test_bad_input_storage_in_terabytes_and_a_unit_the_catalog_does_not_list():
    drives = [Item(id=f"d{n}", title=f"Drive {n}", category=["ssd", "hdd"][n % 2], price=50 + n,
                   attributes={"storage_gb": [256, 512, 1024, 2048][n % 4]}) for n in range(12)]
    lexicon = CatalogLexicon.from_items(drives)
    parser = RequestParser(["ssd", "hdd"], lexicon=lexicon)
    assert parser.parse("at least 1TB").constraints.ranges == {"storage_gb": (1000, None)}
    assert parser.parse("a 1TB drive").constraints.ranges["storage_gb"][1] >= 1024  # about 1TB holds 1,024 GB
    heavy = parser.parse("a drive under 1.5 kg")
    assert heavy.constraints.max_price is None and heavy.constraints.ranges == {}
    assert any("weight" in note for note in heavy.notes)


def test_bad_input_mixed_chinese_and_english(parser):
    request = parser.parse("我想要一件 down parka 给我老婆 不要黑色")
    assert request.state.wants["for"] == ["women"] and "black" in request.constraints.excluded_terms
    assert request.constraints.category == "coats & jackets"


# --- the merge rules -------------------------------------------------------------------------------------------------

def test_refinements_without_product_words_keep_the_subject(parser):
    request = conversation(parser, "I'm looking for a down parka", "it's for women", "preferably in navy")
    assert request.follow_up and "parka" in request.query
    assert request.constraints.category == "coats & jackets" and request.constraints.facets["for"][0] == "women"
    assert request.preferences["color"] == ["navy"]
    tent = conversation(parser, "I need a tent", "for 2 people")
    assert tent.follow_up and tent.query == "tent 2 people" and tent.constraints.category == "outdoor gear"


def test_bad_input_contradictions_the_last_one_wins(parser):
    assert conversation(parser, "a coat for men", "actually for women").state.wants["for"] == ["women"]
    assert parser.parse("for men... actually for women").state.wants["for"] == ["women"]
    assert conversation(parser, "a coat in navy", "not navy").preferences == {}  # excluded after wished: excluded
    later = conversation(parser, "a coat, not navy", "in navy after all")
    assert later.preferences["color"] == ["navy"] and "navy" not in later.constraints.excluded_terms


def test_bad_input_any_colour_clears_the_colour(parser):
    request = conversation(parser, "a coat in red", "any colour is fine")
    assert "color" not in request.state.wants and request.follow_up and "red" not in request.query


def test_a_kind_of_the_same_category_replaces_the_kind_another_category_starts_over(parser):
    parka = conversation(parser, "a coat", "for my wife", "in black", "actually a down parka")
    assert parka.follow_up and "coat" not in parka.query.split() and "parka" in parka.query
    assert parka.preferences["color"] == ["black"]
    boots = conversation(parser, "a coat", "for my wife", "in black", "under $300", "now some boots")
    assert not boots.follow_up and boots.constraints.category == "shoes"
    assert boots.state.wants == {"for": ["women"]} and boots.constraints.max_price == 300  # carried over
    assert boots.preferences == {}  # the colour was the coat's


def test_merge_is_a_pure_function_that_keeps_the_state_bounded():
    state = ShoppingState()
    for turn in range(300):
        state = merge(state, StateChange(
            new_subject=False, subject=f"word{turn}", wants={"color": [f"c{turn}", f"d{turn}"]},
            excluded_terms=[f"t{turn}"], excluded_ids=[f"i{turn}"],
        ))
    assert len(state.subject.split()) == MAX_SUBJECT_WORDS and state.subject.endswith("word299")
    assert len(state.excluded_terms) == MAX_VALUES and len(state.excluded_ids) == 300 <= MAX_EXCLUDED_IDS
    assert state.wants == {"color": ["c299", "d299"]}
    before = state.model_copy(deep=True)
    merge(state, StateChange(new_subject=True, subject="x"))
    assert state == before  # nothing changed in place


def test_bad_input_removing_a_state_entry(parser):
    state = conversation(parser, "a navy coat for my wife under $300").state
    assert "color" not in release(state, "color").wants and release(state, "price").max_price is None
    with pytest.raises(InvalidArgumentError, match="holds no 'material'.*color"):
        release(state, "material")


# --- whole conversations through the engine --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shop(tmp_path_factory, encoder):
    from recchat.config import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("state"), embedding={"bridge": ""}, llm={"backend": "none"})
    return RecChat.from_settings(settings, encoder=encoder, backend=ScriptedBackend("not json"))


def audience(bot, item) -> str:
    return bot.catalog[item.id].attributes.get("for", "")


def colour(bot, item) -> str:
    return bot.catalog[item.id].attributes.get("color", "")


def test_the_parka_conversation_keeps_its_thread(shop):
    session = shop.new_session()
    shop.chat("I'm looking for a down parka", session)
    women = shop.chat("it's for women", session)
    assert women.items and all(audience(shop, item) in ("women", "unisex") for item in women.items)
    assert all(item.category == "coats & jackets" for item in women.items)
    navy = shop.chat("preferably in navy", session)
    assert navy.items and all(item.category == "coats & jackets" for item in navy.items)
    assert all(audience(shop, item) in ("women", "unisex") for item in navy.items)
    assert navy.metadata.request.state.wants == {"for": ["women"], "color": ["navy"], "material": ["down"]}
    # a navy down vest came first: the wishes counted for every kind of the category, and it met both
    parkas = ["Parka" in item.title for item in navy.items]
    assert parkas[0] and parkas == sorted(parkas, reverse=True), [item.title for item in navy.items]


def test_the_first_message_uses_the_state_too(shop):
    reply = shop.chat("a navy sweater for men")
    assert reply.items[0].category == "sweaters" and colour(shop, reply.items[0]) == "navy"
    assert all(audience(shop, item) in ("men", "unisex") for item in reply.items)
    boots = shop.chat("winter boots for women in black under $190")
    assert all(audience(shop, item) in ("women", "unisex") and item.price <= 190 for item in boots.items)
    assert colour(shop, boots.items[0]) == "black"


def test_when_no_item_meets_a_hard_facet_the_nearest_are_shown_and_marked(shop):
    reply = shop.chat("a tent for my son")  # the catalog has no kids' tent (tents are unisex: for adults)
    assert reply.items and all(item.unmet for item in reply.items)
    assert "nearest" in reply.message


def test_bad_input_removing_a_state_entry_through_the_api(shop):
    session = shop.new_session()
    shop.chat("a coat for my wife in red", session)
    assert "color" not in shop.release(session, "color").wants
    after = shop.chat("cheaper", session)
    assert after.metadata.request.state.wants == {"for": ["women"]}
    with pytest.raises(UnknownSessionError):
        shop.release("no-such-session", "color")
    with pytest.raises(InvalidArgumentError):
        shop.release(session, "warmth")


def test_without_the_state_each_message_is_read_alone(tmp_path, encoder):
    from recchat.config import Settings

    settings = Settings(data_dir=tmp_path, embedding={"bridge": ""}, chat={"dialogue_state": False})
    bot = RecChat.from_settings(settings, encoder=encoder, backend=ScriptedBackend("not json"))
    session = bot.new_session()
    bot.chat("a down parka", session)
    alone = bot.chat("it's for women", session)
    assert not alone.metadata.request.follow_up and alone.metadata.request.constraints.category is None


def test_bad_input_booleans_written_by_a_spreadsheet_are_no_reason(furniture):
    from recchat.facts import fact_phrases

    # the catalog's schema reads the column as booleans: "yes" loads as True
    folding = next(item for item in furniture if item.attributes["foldable"] is True)
    fixed = next(item for item in furniture if item.attributes["foldable"] is False)
    assert "foldable" in fact_phrases(folding) and not any("foldable" in p for p in fact_phrases(fixed))


# --- the model reading the message (chat.state_reader) ---------------------------------------------------------------

def reader_bot(tmp_path, encoder, reader: str, *answers: str) -> tuple[RecChat, ScriptedBackend]:
    from recchat.config import Settings

    backend = ScriptedBackend(*answers)
    settings = Settings(data_dir=tmp_path, embedding={"bridge": ""}, chat={"state_reader": reader})
    return RecChat.from_settings(settings, encoder=encoder, backend=backend), backend


def test_the_model_reads_facets_under_a_schema_of_the_catalogs_own_values(lexicon):
    from recchat.understanding.model_reading import readable_facets, reading_schema

    readable = readable_facets(lexicon)
    assert readable["for"] == ["women", "men", "kids"] and readable["waterproof"] == ["true"]
    assert "color" not in readable  # 51 colours: past MAX_ENUM, left to the rules
    schema = reading_schema(readable)
    assert schema["properties"]["season"]["enum"] == ["all-season", "winter", "summer", "spring/autumn", None]


def test_with_both_the_model_fills_what_the_rules_did_not_find_and_the_rules_win(tmp_path, encoder):
    answer = '{"season": "winter", "for": "men", "warmth": null, "waterproof": null}'
    bot, backend = reader_bot(tmp_path, encoder, "both", answer, "not json")
    reply = bot.chat("a coat for my wife")
    assert reply.metadata.request.state.wants == {"season": ["winter"], "for": ["women"]}  # the rules' audience wins
    assert "state_reading_ms" in reply.metadata.timings_ms and "Message: a coat for my wife" in str(backend.calls[0])


def test_with_the_model_alone_its_reading_replaces_the_rules_and_a_bad_answer_leaves_the_rules(tmp_path, encoder):
    kids = '{"season": null, "for": "kids", "warmth": null, "waterproof": null}'
    bot, _ = reader_bot(tmp_path, encoder, "model", kids)
    assert bot.chat("a coat for my wife").metadata.request.state.wants == {"for": ["kids"]}
    broken, _ = reader_bot(tmp_path / "b", encoder, "model", "not json at all")
    assert broken.chat("a coat for my wife").metadata.request.state.wants == {"for": ["women"]}
    invented, _ = reader_bot(tmp_path / "c", encoder, "both", '{"for": "aliens", "season": "monsoon"}')
    assert invented.chat("a coat").metadata.request.state.wants == {}  # values outside the catalog are dropped


def test_the_cheapest_and_the_most_expensive_show_the_best_matches_by_price(shop):
    plain = shop.chat("boots")
    cheapest = shop.chat("the cheapest boots")
    prices = [item.price for item in cheapest.items]
    assert prices == sorted(prices) and prices[0] < min(item.price for item in plain.items)
    assert all("boots" in item.title.lower() for item in cheapest.items[:3]) and "Cheapest first" in cheapest.message
    dearest = [item.price for item in shop.chat("the most expensive jacket").items]
    assert dearest == sorted(dearest, reverse=True)
    assert shop.chat("最便宜的外套").metadata.request.state.order == "price_low"


def test_the_order_holds_through_refinements_and_can_be_taken_away(shop):
    session = shop.new_session()
    shop.chat("the cheapest boots", session)
    women = shop.chat("for women", session)
    assert women.metadata.request.state.order == "price_low"
    prices = [item.price for item in women.items]
    assert prices == sorted(prices)
    assert shop.release(session, "order").order is None
    assert shop.chat("now some jackets", session).metadata.request.state.order is None  # a new subject: no order
