"""The UI's handlers against the real engine (encoder, Chroma, SQLite; no LLM, so no model wait): what each
button and the message box do, without a browser. The browser tests are in test_ui_browser.py."""

from __future__ import annotations

import asyncio

import pytest

from ui.app import (
    ANY_CATEGORY,
    Engines,
    TabState,
    card_html,
    categories,
    chat_text,
    drop_chip,
    greeting,
    new_session,
    rate,
    respond,
)


@pytest.fixture(scope="module")
def engines(settings, encoder, tmp_path_factory):
    tuned = settings.model_copy(update={
        "llm": settings.llm.model_copy(update={"backend": "none"}),
        "feedback": settings.feedback.model_copy(update={"path": tmp_path_factory.mktemp("ui") / "feedback.sqlite3"}),
    })
    return Engines(tuned, encoder=encoder)


def ask(engines, message, state=None, history=None, category=ANY_CATEGORY, low=None, high=None):
    """Every step `respond` streams for one message."""

    async def steps():
        return [step async for step in respond(engines, message, history or [], state, "products", category, low, high)]

    return asyncio.run(steps())


def test_an_answer_streams_then_fills_the_cards_with_real_items(engines):
    steps = ask(engines, "I want a winter coat")
    assert len(steps) >= 3  # the message, then items as they come
    assert steps[0][0][-1]["content"].endswith("Choosing and explaining…_")  # said while the model works
    history, state, notice = steps[-1]
    assert "Choosing" not in history[-1]["content"]
    catalog = engines["products"].catalog
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert state.items and all(item["id"] in catalog for item in state.items)
    assert all(catalog[item["id"]].title in history[-1]["content"] for item in state.items)
    assert "search alone" in notice  # llm.backend 'none' is the retrieval-only answer, said plainly
    card = card_html(state.items[0])
    assert catalog[state.items[0]["id"]].title in card and "$" in card
    assert "for winter" in card and "season:" not in card  # the facts as reasons read them, not 'key: value' rows
    assert "data-source='facts'" in card and "not the model" in card  # the card says the model did not choose it


def test_markdown_and_html_in_messages_and_titles_reach_the_chat_as_text(engines):
    history, _, _ = ask(engines, "winter coat ![x](http://evil.example/p.png) <b>now</b>")[-1]
    said, answered = history[0]["content"], history[-1]["content"]
    assert "![x](" not in said and "<b>" not in said and "&lt;b&gt;" in said and "\\!\\[x\\]" in said
    assert "<b>" not in answered and "![x](" not in answered
    assert chat_text("Parka **Pro** [link](http://e)") == r"Parka \*\*Pro\*\* \[link\]\(http:\/\/e\)"


def test_an_unexpected_failure_is_said_plainly_and_the_tab_keeps_its_state(engines, monkeypatch, caplog):
    state = ask(engines, "I want a winter coat")[-1][1]
    bot = engines["products"]

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot, "astream", broken)
    history, kept, _ = ask(engines, "cheaper", state)[-1]
    assert "went wrong on our side" in history[-1]["content"] and kept.items == state.items
    assert "turn failed" in caplog.text
    monkeypatch.setattr(bot, "feedback", broken)
    assert "went wrong on our side" in rate(engines, "like", state.items[0]["id"], state, "products")


@pytest.mark.parametrize("source, says", [
    ("llm-facts", "Facts chosen by the model"), ("llm", "Written by the model"), ("facts", "not the model"),
])
def test_each_card_says_where_its_reason_came_from(engines, source, says):
    item = ask(engines, "I want a winter coat")[-1][1].items[0] | {"reason_source": source}
    card = card_html(item)
    assert f"data-source='{source}'" in card and says in card


def test_like_then_more_like_that_moves_the_ranking_and_dislike_hides(engines):
    state = ask(engines, "I want a winter coat")[-1][1]
    first = [item["id"] for item in state.items]
    assert "you like" in rate(engines, "like", first[3], state, "products")
    state = ask(engines, "more like that", state)[-1][1]
    assert [item["id"] for item in state.items] != first
    gone = state.items[0]["id"]
    assert "not be shown again" in rate(engines, "dislike", gone, state, "products")
    state = ask(engines, "more like that", state)[-1][1]
    assert gone not in [item["id"] for item in state.items]


def test_the_side_controls_filter_by_category_and_price(engines):
    assert "shoes" in categories(engines, "products") and categories(engines, "products")[0] == ANY_CATEGORY
    state = ask(engines, "something warm", category="shoes", high=150)[-1][1]
    assert state.items and all(item["category"] == "shoes" and item["price"] <= 150 for item in state.items)


@pytest.mark.parametrize("message", ["", "x" * 5000])
def test_empty_and_overlong_messages_get_a_plain_answer_not_a_crash(engines, message):
    history, state, _ = ask(engines, message)[-1]
    assert history[-1]["content"].startswith("Sorry:") and not state.items


def test_no_matches_says_so(engines):
    history, state, _ = ask(engines, "a winter coat", low=100000)[-1]
    assert "Nothing in the products catalog" in history[-1]["content"] and not state.items


def test_tabs_are_isolated_and_new_session_starts_over(engines):
    ann = ask(engines, "I want a winter coat")[-1][1]
    ben = ask(engines, "I want a winter coat")[-1][1]
    assert ann.sessions["products"] != ben.sessions["products"]
    rate(engines, "dislike", ann.items[0]["id"], ann, "products")
    ben_again = ask(engines, "I want a winter coat", ben)[-1][1]
    assert ann.items[0]["id"] in [item["id"] for item in ben_again.items]  # ann's dislike is hers
    history, fresh, status = new_session(ann, "products")
    assert history == [] and "products" not in fresh.sessions and "New session" in status
    assert rate(engines, "like", "P0001-down-parka", TabState(), "products") == "Ask for something first."


def test_with_the_real_llm_the_answer_streams_and_needs_no_notice(settings, encoder, real_backend, tmp_path):
    feedback = settings.feedback.model_copy(update={"path": tmp_path / "f.sqlite3"})
    tuned = settings.model_copy(update={"feedback": feedback})
    engines = Engines(tuned, encoder=encoder, backend=real_backend)
    steps = ask(engines, "waterproof hiking boots")
    history, state, notice = steps[-1]
    assert state.items and len(steps) >= 2
    assert notice == "" or "search alone" in notice  # the notice appears exactly when the LLM's answer was not used
    reply_source = engines["products"].sessions.get(state.sessions["products"]).last_reply.metadata.source
    assert (notice == "") == (reply_source == "llm")


@pytest.mark.parametrize("low, high", [(-5, None), (None, float("nan")), (float("inf"), None)])
def test_a_price_the_boxes_would_refuse_is_a_readable_error_from_gradios_api(engines, low, high):
    """Gradio's HTTP API passes any number to the handler, whatever the page's boxes allow."""
    history, state, _ = ask(engines, "I want a winter coat", low=low, high=high)[-1]
    assert history[-1]["content"].startswith("Sorry: the price boxes take amounts of 0 or more")
    assert state.items == []


def test_the_state_shows_as_chips_and_a_chip_taken_away_is_not_read_again(engines):
    _, state, _ = ask(engines, "a coat for my wife in red")[-1]
    chips = dict(state.chips)
    assert chips["for"] == "For: women" and chips["color"] == "Color: red" and "category" in chips
    state, status = drop_chip(engines, "color", state, "products")
    assert "color" not in dict(state.chips) and "Removed Color: red" in status
    _, after, _ = ask(engines, "under $300", state)[-1]
    assert "color" not in dict(after.chips) and dict(after.chips)["price"] == "Price: up to $300"
    assert drop_chip(engines, "color", after, "products")[1].startswith("Sorry: the session's state holds no 'color'")
    assert drop_chip(engines, "color", TabState(), "products")[1] == "Ask for something first."


def test_a_card_shown_as_the_nearest_says_what_it_misses(engines):
    _, state, _ = ask(engines, "a tent for my son")[-1]  # no tent is for kids
    assert state.items and all(item["unmet"] for item in state.items)
    assert "Nearest, but not for: kids" in card_html(state.items[0])


def test_a_sold_out_card_says_so_and_an_available_one_does_not(engines):
    _, state, _ = ask(engines, "a warm jacket")[-1]
    shown = state.items[0]
    assert "Sold out" not in card_html(shown) and "Sold out" in card_html(shown | {"in_stock": False})


def test_the_greeting_suggests_requests_from_the_catalogs_own_data(engines, tmp_path):
    assert "for women under $" in greeting(engines, "products")  # its commonest kind, whom it is for, a budget
    shop = tmp_path / "home.csv"
    rows = [f"L{n},Lumo {['Desk Lamp', 'Floor Lamp'][n % 2]} {n},lighting,{20 + n},USD" for n in range(10)]
    rows += [f"R{n},Weft {['Wool Rug', 'Jute Rug'][n % 2]} {n},rugs,{90 + n},USD" for n in range(6)]
    shop.write_text("id,title,category,price,currency\n" + "\n".join(rows) + "\n", encoding="utf-8")
    text = greeting(engines, str(shop))
    assert "lamp under $" in text and "rug under $" in text and "parka" not in text  # its own kinds and prices


def test_a_cards_picture_is_a_local_file_inline_or_a_url_on_an_allowed_host(tmp_path):
    from ui.app import image_source

    picture = tmp_path / "coat.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    assert image_source(str(picture), []).startswith("data:image/png;base64,")
    assert image_source("https://cdn.shop.example/coat.jpg", ["cdn.shop.example"]) == "https://cdn.shop.example/coat.jpg"


@pytest.mark.parametrize(
    "image, hosts",
    [
        ("https://tracker.example/pixel.gif", ["cdn.shop.example"]),  # a host the owner did not allow
        ("http://cdn.shop.example/coat.jpg", ["cdn.shop.example"]),  # not https
        ("/etc/passwd", []),  # not a picture
        ("missing.png", []),  # no such file
        ("javascript:alert(1)", []),
    ],
)
def test_bad_input_a_picture_the_page_should_not_load_is_left_out(image, hosts):
    from ui.app import image_source

    assert image_source(image, hosts) is None


def test_bad_input_a_local_picture_too_large_to_inline_is_left_out(tmp_path):
    from ui.app import MAX_IMAGE_BYTES, image_source

    picture = tmp_path / "huge.jpg"
    picture.write_bytes(b"0" * (MAX_IMAGE_BYTES + 1))
    assert image_source(str(picture), []) is None
