import pytest

from recchat.understanding import CatalogLexicon, RequestParser, detect_language


@pytest.fixture(scope="module")
def parser(products):
    return RequestParser(products.categories())


@pytest.mark.parametrize(
    "message, query, category, low, high",
    [
        ("I want a winter coat", "winter coat", "coats & jackets", None, None),
        ("show me running shoes under $100", "running shoes", "shoes", None, 100),
        ("hiking boots between 50 and 120 dollars", "hiking boots", "shoes", 50, 120),
        ("a cashmere sweater, at least €150", "cashmere sweater", "sweaters", 150, None),
        ("tent 200 or less", "tent", "outdoor gear", None, 200),
        ("a 1.5k parka", "1 5k parka", "coats & jackets", None, None),
    ],
)
def test_topic_category_and_price(parser, message, query, category, low, high):
    request = parser.parse(message)
    assert (request.query, request.constraints.category) == (query, category)
    assert (request.constraints.min_price, request.constraints.max_price) == (low, high)
    assert not request.follow_up


def test_follow_ups_refine_the_previous_request(parser, products):
    first = parser.parse("I want a winter coat")
    shown = [products["P0001-down-parka"], products["P0002-down-parka"]]
    cheaper = parser.parse("cheaper", first, shown)
    assert cheaper.follow_up and cheaper.query == "winter coat"
    assert cheaper.constraints.max_price == pytest.approx(min(i.price for i in shown) - 0.01)
    assert parser.parse("not black", first, shown).constraints.excluded_terms == ["black"]
    assert parser.parse("something else", first, shown).constraints.excluded_ids == sorted(i.id for i in shown)
    assert parser.parse("in wool", first, shown).query == "winter coat wool"
    pricier = parser.parse("more expensive", first, shown)
    assert pricier.constraints.min_price == pytest.approx(max(i.price for i in shown) + 0.01)
    turned = parser.parse("more expensive", cheaper, shown)  # after "cheaper": the old upper limit goes
    assert turned.constraints.max_price is None and turned.constraints.min_price == pricier.constraints.min_price


def test_a_new_subject_starts_over_keeping_whom_it_is_for_and_the_budget(products):
    parser = RequestParser(products.categories(), lexicon=CatalogLexicon.from_items(products))
    first = parser.parse("a winter coat for my wife under $150 not black")
    second = parser.parse("running shoes for the gym", first, [products["P0001-down-parka"]])
    assert not second.follow_up and second.constraints.category == "shoes"
    assert second.constraints.max_price == 150 and second.constraints.excluded_terms == []
    assert second.constraints.facets == {"for": ["women", "unisex"]} and second.preferences == {}


def test_exclusions_skip_non_terms(parser):
    request = parser.parse("no more than 80 for a scarf, not too expensive, without wool")
    assert request.constraints.max_price == 80 and request.constraints.excluded_terms == ["wool"]


def test_chinese_request_becomes_english_keywords(parser):
    request = parser.parse("我想买一件冬季外套")
    assert request.language == "zh" and request.constraints.category == "coats & jackets"
    assert "winter" in request.query and "coat" in request.query
    priced = parser.parse("我想要200元以下的羽绒服，不要黑色")
    assert priced.constraints.max_price == 200 and priced.constraints.excluded_terms == ["black", "黑色"]
    assert "down parka" in priced.query


def test_with_a_multilingual_encoder_a_chinese_request_is_searched_in_its_own_words(products):
    parser = RequestParser(products.categories(), multilingual=True)
    request = parser.parse("我想要200元以下的羽绒服，不要黑色")
    assert request.query == "羽绒服" and not request.notes  # price, exclusion and filler are constraints, not query
    assert request.constraints.max_price == 200 and request.constraints.excluded_terms == ["black", "黑色"]
    assert request.constraints.category == "coats & jackets"
    assert parser.parse("我想要一件 winter coat 不要黑色 under $200").query == "winter coat"


@pytest.mark.parametrize("multilingual", [False, True], ids=["glossary", "multilingual"])
@pytest.mark.parametrize(
    "message, searched, low, high, excluded",
    [
        ("100到200元之间的跑鞋", "跑鞋", 100, 200, []),
        ("价格在100和200之间的毛衣", "毛衣", 100, 200, []),
        ("100-200元的背包", "背包", 100, 200, []),
        ("100至200块钱的帐篷", "帐篷", 100, 200, []),
        ("200块钱以下的毛衣", "毛衣", None, 200, []),
        ("跑鞋 100美元以下", "跑鞋", None, 100, []),
        ("除了黑色的毛衣", "毛衣", None, None, ["black", "黑色"]),  # 除了 excludes the colour, not "黑色的毛"
        ("毛衣，除了羊毛的", "毛衣", None, None, ["wool", "羊毛"]),
        ("不要黑色羽绒服", "羽绒服", None, None, ["black", "黑色"]),  # the words run together: the colour is excluded
        ("毛衣，不要格子", "毛衣", None, None, ["格子"]),  # no English for it: excluded as written
        ("羊绒毛衣 ￥１５０以下", "羊绒毛衣", None, 150, []),  # full-width digits and yuan sign
        ("２００元以上的外套", "外套", 200, None, []),
    ],
)
def test_chinese_prices_and_exclusions(products, multilingual, message, searched, low, high, excluded):
    request = RequestParser(products.categories(), multilingual=multilingual).parse(message)
    assert (request.constraints.min_price, request.constraints.max_price) == (low, high)
    assert request.constraints.excluded_terms == excluded
    assert not any(character.isdigit() for character in request.query)  # amounts are limits, not search words
    if multilingual:
        assert request.query == searched


@pytest.mark.parametrize("multilingual", [False, True], ids=["glossary", "multilingual"])
def test_chinese_follow_ups(products, multilingual):
    parser = RequestParser(products.categories(), multilingual=multilingual)
    first = parser.parse("我想买一件冬季外套")
    shown = [products["P0001-down-parka"], products["P0002-down-parka"]]
    cheapest, dearest = min(i.price for i in shown), max(i.price for i in shown)
    for message in ("便宜一点", "再便宜些"):
        cheaper = parser.parse(message, first, shown)
        assert cheaper.follow_up and cheaper.constraints.max_price == pytest.approx(cheapest - 0.01)
        assert cheaper.query == first.query  # "一点", "再", "些" are not searched for
    for message in ("更贵的", "有没有更贵一点的"):
        pricier = parser.parse(message, first, shown)
        assert pricier.follow_up and pricier.constraints.min_price == pytest.approx(dearest + 0.01)
    other = parser.parse("换一批", first, shown)
    assert other.follow_up and other.constraints.excluded_ids == sorted(i.id for i in shown)
    assert other.query == first.query
    assert parser.parse("不要黑色的", first, shown).constraints.excluded_terms == ["black", "黑色"]
    assert parser.parse("羊毛的", first, shown).follow_up  # "in wool": a word the glossary knows refines
    if multilingual:  # a thing the glossary does not know is a new subject, not a refinement of the coat
        swimsuit = parser.parse("泳衣", first, shown)
        assert not swimsuit.follow_up and swimsuit.query == "泳衣" and swimsuit.constraints.category is None


def test_contradictory_prices_are_noted(parser):
    request = parser.parse("a coat over $300 under $100")
    assert request.constraints.min_price == 300 and request.constraints.max_price == 100
    assert "contradict" in " ".join(request.notes)


def test_language_detection():
    texts = ["warm coat", "我想买外套", "manteau chaud pour l'hiver éé", "123"]
    assert [detect_language(t) for t in texts] == ["en", "zh", "en", "en"]
    assert detect_language("Ich möchte einen warmen Mantel für den Winter, ähnlich größer äöü") in {"en", "other"}
    assert detect_language("Тёплое пальто") == "other"


def test_quoted_titles_are_names_not_constraints(parser):
    """Bad input tried: film titles that read like constraints ("Never Been Kissed", "Under Siege 2",
    "Top Gun"); inside quotes they must stay in the query and set no exclusion, price or category."""
    request = parser.parse('I liked "Never Been Kissed", "Under Siege 2" and "Top Gun"; what next?')
    constraints = request.constraints
    assert constraints.excluded_terms == [] and constraints.max_price is None and constraints.category is None
    assert all(title in request.query for title in ("Never Been Kissed", "Under Siege 2", "Top Gun"))
    unquoted = parser.parse("I liked Never Been Kissed")
    assert unquoted.constraints.excluded_terms == ["been"]  # why the quotes matter


def test_quoted_titles_named_as_liked_become_references():
    titles = [("m:1", "Heat (1995)"), ("m:2", "Casino (1995)"), ("m:3", "Heat (1972)"), ("m:4", "Fargo (1996)")]
    films = RequestParser(["movies"], titles)
    liked = films.parse('I liked "Heat (1995)" and "Fargo"; what should I watch next?')
    assert liked.similar_to == ["m:1", "m:4"] and liked.query == ""
    assert liked.constraints.excluded_ids == ["m:1", "m:4"]  # never offered back
    assert films.parse("funnier ones", liked).similar_to == ["m:1", "m:4"]  # a refinement keeps them
    ambiguous = films.parse('a comedy like "Heat"')  # two films are called Heat: not resolved, searched as words
    assert ambiguous.similar_to == [] and ambiguous.query == "comedy Heat"
    asked = films.parse('do you have "Casino (1995)"?')  # the item asked for, not a reference
    assert asked.similar_to == [] and asked.constraints.excluded_ids == [] and "Casino (1995)" in asked.query


def test_more_like_that_refers_to_the_latest_likes_else_the_first_item_shown(parser, products):
    first = parser.parse("a warm winter coat under $400")
    shown = [products["P0007-wool-overcoat"], products["P0038-peacoat"]]
    liked = parser.parse("more like that", first, shown, liked=["P0038-peacoat", "P0004-down-parka"])
    assert liked.similar_to == ["P0038-peacoat", "P0004-down-parka"] and liked.follow_up
    assert liked.constraints.max_price == 400 and liked.query == first.query  # the request stands
    # references are not offered back
    assert set(liked.constraints.excluded_ids) >= {"P0038-peacoat", "P0004-down-parka"}
    assert parser.parse("more like this", first, shown).similar_to == ["P0007-wool-overcoat"]
    assert parser.parse("more like that").similar_to == []  # nothing to refer to yet
