"""The clarifying question: asked when the candidates split on something not said yet, in the catalog's own values
and the shopper's language; answered by sending an option's message, which the rules read back into the state."""

import pytest

from recchat.chat import RecChat
from recchat.models import Item, ShoppingState
from recchat.understanding import CatalogLexicon, RequestParser
from recchat.understanding.clarify import clarifying_question
from tests.conftest import ScriptedBackend


def lamp(number: int, who: str, colour: str, category: str = "lighting") -> Item:
    return Item(
        id=f"L{number}", title=f"Lumo Reading Lamp {number}", category=category, price=20.0 + number,
        attributes={"gender": who, "shade": colour, "finish": ["matte", "gloss"][number % 2]},
    )


@pytest.fixture(scope="module")
def lamps() -> tuple[list[Item], CatalogLexicon]:
    """A catalog recchat has never seen: its audience and colour columns are named 'gender' and 'shade'."""
    items = [lamp(n, ["Womens", "Mens"][n % 2], "brass") for n in range(8)]
    items += [lamp(n, "Unisex", ["brass", "black", "white"][n % 3], "furniture") for n in range(8, 20)]
    return items, CatalogLexicon.from_items(items)


def test_candidates_split_on_who_it_is_for_ask_it_with_the_catalogs_groups(lamps):
    items, lexicon = lamps
    question = clarifying_question(items[:8], ShoppingState(category="lighting"), lexicon, "en")
    assert question is not None and question.facet == "gender" and question.text == "Who is it for?"
    assert {(o.value, o.label, o.message, o.count) for o in question.options} == {
        ("women", "Women", "for women", 4), ("men", "Men", "for men", 4)
    }


def test_nothing_is_asked_of_what_was_said_or_when_the_candidates_do_not_split(lamps):
    items, lexicon = lamps
    said = ShoppingState(category="lighting", wants={"gender": ["Womens"]})
    assert clarifying_question(items[:8], said, lexicon, "en") is None  # all brass: the colour does not split
    assert clarifying_question(items[:3], ShoppingState(category="lighting"), lexicon, "en") is None  # too few
    alike = [lamp(n, "Womens", "brass") for n in range(6)]
    assert clarifying_question(alike, ShoppingState(category="lighting"), lexicon, "en") is None


def test_a_unisex_item_tells_nothing_about_who_it_is_for(lamps):
    items, lexicon = lamps
    question = clarifying_question(items[8:], ShoppingState(category="furniture"), lexicon, "en")
    assert question is not None and question.facet == "shade"  # all unisex: the colour is what splits them
    assert {o.value for o in question.options} == {"brass", "black", "white"}
    assert all(o.message == f"in {o.value}" for o in question.options)


def test_the_category_is_asked_when_none_was_said_and_the_same_facet_is_not_asked_twice_in_a_row(lamps):
    items, lexicon = lamps
    mixed = items[8:10] + items[:2] + items[12:14] + items[4:6]  # half lighting, half furniture
    question = clarifying_question(mixed, ShoppingState(), lexicon, "en", asked_before="shade")
    assert question is not None and question.facet == "category"
    assert {o.value for o in question.options} == {"lighting", "furniture"}
    again = clarifying_question(mixed, ShoppingState(), lexicon, "en", asked_before="category")
    assert again is not None and again.facet != "category"


def test_bad_input_a_facet_of_long_values_is_never_asked_about():
    items = [
        Item(id=f"B{n}", title=f"Trail Boot {n}", category="boots",
             attributes={"material": ["nubuck leather with a waterproof membrane", "natural rubber and cork"][n % 2]})
        for n in range(8)
    ]
    assert clarifying_question(items, ShoppingState(category="boots"), CatalogLexicon.from_items(items), "en") is None


def test_a_chinese_request_is_asked_in_chinese(products_zh):
    lexicon = CatalogLexicon.from_items(products_zh)
    coats = [item for item in products_zh if item.category == "外套"][:8]
    question = clarifying_question(coats, ShoppingState(category="外套"), lexicon, "zh")
    assert question is not None and question.text in {"是给谁买的？", "想要什么颜色？"}
    assert all(option.message.endswith("的") or option.message.endswith("款") for option in question.options)


# --- through the engine ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shop(tmp_path_factory, encoder):
    from recchat.config import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("clarify"), embedding={"bridge": ""}, llm={"backend": "none"})
    return RecChat.from_settings(settings, encoder=encoder, backend=ScriptedBackend("not json"))


def test_answering_with_an_option_puts_its_value_in_the_state_and_keeps_the_subject(shop):
    session = shop.new_session()
    first = shop.chat("I need a jacket", session)
    assert first.question is not None and first.items  # the items are shown meanwhile, as best guesses
    option = first.question.options[0]
    answered = shop.chat(option.message, session)
    state = answered.metadata.request.state
    assert "jacket" in state.subject and state.category == "coats & jackets"
    facet = first.question.facet
    if facet == shop.lexicon.audience.name:
        assert state.wants[facet] == [option.value]
    else:
        assert option.value in state.wants[facet]
    assert answered.question is None or answered.question.facet != facet


def test_a_category_answer_refines_a_subject_that_named_none(shop):
    session = shop.new_session()
    shop.chat("something warm", session)
    after = shop.chat("coats & jackets", session)
    assert after.metadata.request.follow_up and after.metadata.request.state.category == "coats & jackets"
    assert all(item.category == "coats & jackets" for item in after.items)


def test_the_question_can_be_turned_off(tmp_path, encoder):
    from recchat.config import Settings

    settings = Settings(data_dir=tmp_path, embedding={"bridge": ""}, llm={"backend": "none"}, chat={"clarify": False})
    bot = RecChat.from_settings(settings, encoder=encoder, backend=ScriptedBackend("not json"))
    assert bot.chat("I need a jacket").question is None


def test_no_question_with_the_nearest_items(shop):
    reply = shop.chat("a tent for my son")  # nothing matches: the nearest are shown, nothing to choose between
    assert reply.items and all(item.unmet for item in reply.items) and reply.question is None


def test_a_one_category_catalog_is_not_asked_its_category():
    items = [Item(id=f"M{n}", title=f"Film {n}", category="movies", attributes={"genres": ["Drama", "Comedy"][n % 2]})
             for n in range(8)]
    question = clarifying_question(items, ShoppingState(), CatalogLexicon.from_items(items), "en")
    assert question is not None and question.facet == "genres" and question.text == "Any genres in mind?"


@pytest.mark.parametrize("catalog_name, language", [("products", "en"), ("products", "zh"), ("products-zh", "zh")])
def test_every_option_is_read_back_as_its_value(catalog_name, language, products, products_zh):
    """Each option's message, sent after the question, puts the option's value in the state, in either language."""
    catalog = products if catalog_name == "products" else products_zh
    lexicon = CatalogLexicon.from_items(catalog)
    parser = RequestParser(catalog.categories(), ((item.id, item.title) for item in catalog), lexicon=lexicon)
    category = sorted(catalog.categories())[0]
    for group in ("women", "men"):
        shown = [item for item in catalog if lexicon.audience_group(str(item.attributes.get(
            lexicon.audience.name))) == group][:8]
        before = parser.parse("我想买保暖的东西" if language == "zh" else "something warm")
        question = clarifying_question(shown, before.state.model_copy(update={"category": category}), lexicon, language)
        assert question is not None
        for option in question.options:
            after = parser.parse(option.message, before)
            assert after.follow_up, option.message
            wanted = after.state.wants.get(question.facet, [])
            assert option.value.lower() in [value.lower() for value in wanted], (option.message, wanted)


def test_a_waived_facet_is_not_asked_again(shop):
    session = shop.new_session()
    shop.chat("a jacket for women", session)
    waived = shop.chat("any colour is fine", session)
    assert waived.metadata.request.state.waived == ["color"]
    assert waived.question is None or waived.question.facet != "color"
    again = shop.chat("in navy", session)
    assert again.metadata.request.state.waived == []  # said again: no longer waived


def test_a_value_every_candidate_has_is_no_option():
    items = [Item(id=f"M{n}", title=f"Film {n}", category="movies",
                  attributes={"genres": ["Drama", ["Comedy", "Crime"][n % 2]]}) for n in range(8)]
    question = clarifying_question(items, ShoppingState(), CatalogLexicon.from_items(items), "en")
    assert question is not None and {option.value for option in question.options} == {"Comedy", "Crime"}


def test_a_chinese_category_answer_read_in_its_own_words_refines(products_zh):
    lexicon = CatalogLexicon.from_items(products_zh)
    titles = [(item.id, item.title) for item in products_zh]
    parser = RequestParser(products_zh.categories(), titles, multilingual=True, lexicon=lexicon)
    before = parser.parse("保暖的东西")
    for category in ("配饰", "上衣", "外套"):
        after = parser.parse(category, before)
        assert after.follow_up and after.state.category == category, category
