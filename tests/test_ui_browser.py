"""The UI in a real browser: Debian's Chromium driven by Playwright against the app served in this process (real
encoder, Chroma and SQLite; llm.backend 'none', so answers take milliseconds). Screenshots of every step go to
test-artifacts/ui/. Without /usr/bin/chromium these tests are skipped, unless RECCHAT_REQUIRE_BROWSER=1 (as in CI),
where a missing browser fails."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
ANSWERS = ("Here is what I found", "Nothing in the", "Sorry:")

if not CHROMIUM.exists():
    if os.environ.get("RECCHAT_REQUIRE_BROWSER") == "1":
        raise RuntimeError("RECCHAT_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing: apt-get install -y chromium")
    pytest.skip("no /usr/bin/chromium (apt-get install -y chromium)", allow_module_level=True)

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def engines(settings, encoder, tmp_path_factory):
    from ui.app import Engines

    tuned = settings.model_copy(update={
        "llm": settings.llm.model_copy(update={"backend": "none"}),
        "feedback": settings.feedback.model_copy(update={"path": tmp_path_factory.mktemp("ui") / "feedback.sqlite3"}),
    })
    return Engines(tuned, encoder=encoder)


@pytest.fixture(scope="module")
def ui_url(engines):
    from ui.app import build_app, launch_options

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build_app(engines, ["products", "movies-ml-100k"])
    app.queue().launch(
        server_name="127.0.0.1", server_port=port, share=False, prevent_thread_lock=True, quiet=True,
        **launch_options(engines.settings),
    )
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.hosts = set()
    page.on("request", lambda request: page.hosts.add(request.url.split("/")[2]))
    page.goto(ui_url, wait_until="load")
    page.wait_for_selector("#message textarea", timeout=60_000)
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def answers(page) -> int:
    text = page.locator("#chat").inner_text()
    return sum(text.count(marker) for marker in ANSWERS)


def ask(page, message: str) -> None:
    before = answers(page)
    page.fill("#message textarea", message)
    page.click("#send")
    wait_for_answer(page, before)


def wait_for_answer(page, before: int) -> None:
    """Until the chat holds one more answer than `before`, and the cards show its items."""
    page.wait_for_function(
        "([before, markers]) => { const t = document.querySelector('#chat').innerText;"
        " return markers.reduce((n, m) => n + t.split(m).length - 1, 0) > before; }",
        arg=[before, list(ANSWERS)], timeout=60_000,
    )
    # The cards render after the last streamed step: wait until they show this answer's items, not the last one's.
    page.wait_for_function(
        "() => { const t = document.querySelector('#chat').innerText;"
        " const last = t.slice(t.lastIndexOf('Here is what I found'));"
        " if (!t.includes('Here is what I found') || t.lastIndexOf('Sorry:') > t.lastIndexOf('Here is what I found')"
        "     || t.lastIndexOf('Nothing in the') > t.lastIndexOf('Here is what I found')) return true;"
        " const cards = [...document.querySelectorAll('.rc-card h4')].map(e => e.innerText.trim());"
        " return cards.length > 0 && cards.every(c => last.includes(c)); }",
        timeout=60_000,
    )


def titles(page) -> list[str]:
    return page.locator(".rc-card h4").all_inner_texts()


def test_winter_coat_shows_cards_of_real_items_at_desktop_and_phone_width(page, products):
    ask(page, "I want a winter coat")
    shown = titles(page)
    assert 3 <= len(shown) <= 5 and set(shown) <= {item.title for item in products}
    assert "search alone" in page.locator("#notice").inner_text()  # the retrieval-only answer says so
    assert page.locator(".rc-like").count() == len(shown) == page.locator(".rc-dislike").count()
    shot(page, "1-winter-coat-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing spills sideways on a phone
    shot(page, "1-winter-coat-phone")
    assert page.hosts == {page.url.split("/")[2]}  # nothing loaded from anywhere else


def test_like_then_more_like_that_moves_the_ranking(page):
    ask(page, "I want a winter coat")
    before = titles(page)
    page.locator(".rc-like").nth(3).click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Noted')", timeout=20_000)
    assert before[3] in page.locator("#status").inner_text()
    shot(page, "2-liked")
    ask(page, "more like that")
    assert titles(page) != before
    shot(page, "2-more-like-that")


def test_a_disliked_item_disappears(page):
    ask(page, "I want a winter coat")
    gone = titles(page)[0]
    page.locator(".rc-dislike").nth(0).click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('not be shown again')", timeout=20_000)
    ask(page, "I want a winter coat")
    assert gone not in titles(page) and titles(page)
    shot(page, "3-disliked-gone")


def test_the_state_shows_as_chips_above_the_answer_and_one_can_be_taken_away(page):
    ask(page, "a coat for my wife in red")
    chips = page.locator(".rc-chip")
    assert any("For: women" in text for text in chips.all_inner_texts())
    assert any("Color: red" in text for text in chips.all_inner_texts())
    shot(page, "4-chips")
    page.locator(".rc-chip", has_text="Color: red").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('Removed')", timeout=20_000)
    page.wait_for_function(  # the chips are drawn again from the new state
        "() => ![...document.querySelectorAll('.rc-chip')].some(c => c.innerText.includes('Color'))", timeout=20_000
    )
    assert any("For: women" in text for text in page.locator(".rc-chip").all_inner_texts())
    ask(page, "under $300")
    texts = page.locator(".rc-chip").all_inner_texts()
    assert any("Price: up to $300" in text for text in texts) and not any("Color" in text for text in texts)
    assert any("For: women" in text for text in texts)
    shot(page, "4-chip-removed")


def test_a_clarifying_question_shows_as_buttons_and_a_click_answers_it(page):
    ask(page, "I need a jacket")
    question = page.locator("#question")
    options = page.locator(".rc-option")
    assert question.count() == 1 and options.count() >= 2
    assert question.inner_text().strip().split("\n")[0] in page.locator("#chat").inner_text()  # asked in the chat too
    label = options.first.inner_text().strip()
    shot(page, "5-question")
    before = answers(page)
    options.first.click()
    wait_for_answer(page, before)
    assert label.lower() in page.locator("#chat").inner_text().lower()  # sent as the shopper's message
    page.wait_for_function(  # the answer is in the state: a chip holds the option's value
        "(label) => [...document.querySelectorAll('.rc-chip')].some(c => c.innerText.toLowerCase().includes(label))",
        arg=label.lower(), timeout=20_000,
    )
    assert any("jacket" in text.lower() for text in page.locator(".rc-chip").all_inner_texts())  # still jackets
    shot(page, "5-question-answered")


def test_switching_to_movies(page):
    page.locator("#catalog input").click()
    page.get_by_role("option", name="movies-ml-100k").click()
    page.wait_for_function("document.querySelector('#status').innerText.includes('New session')", timeout=180_000)
    ask(page, 'I liked "Toy Story (1995)", what should I watch next?')
    shown = titles(page)
    assert shown and all("(19" in title for title in shown) and "Toy Story (1995)" not in shown
    shot(page, "4-movies")


def test_an_empty_message_is_answered_plainly(page):
    page.click("#send")
    page.wait_for_function("document.querySelector('#status').innerText.includes('Type what you are looking for')",
                           timeout=20_000)
    assert page.locator(".rc-card").count() == 0 and "Sorry" not in page.locator("#chat").inner_text()
    shot(page, "5-empty-message")
    page.fill("#message textarea", "x" * 3000)
    page.click("#send")
    page.wait_for_function("document.querySelector('#chat').innerText.includes('Sorry:')", timeout=20_000)
    assert "the limit is 2,000" in page.locator("#chat").inner_text()
    shot(page, "5-overlong-message")


def test_the_ui_renders_catalog_titles_and_messages_as_text_and_loads_nothing_from_other_hosts(page):
    """Issue #13, defect 2: Markdown and HTML in a message (or a catalog title) used to render as live images and
    links that the browser fetched from other hosts."""
    planted = '<img src="http://evil.example/x.png"> ![pixel](http://evil.example/y.png) [win](http://evil.example)'
    ask(page, f"winter coat {planted}")
    chat = page.locator("#chat")
    assert chat.locator("img").count() == 0 and chat.locator("a[href*='evil.example']").count() == 0
    assert '<img src="http://evil.example/x.png">' in chat.inner_text()  # shown as the text it is
    page.wait_for_timeout(500)
    assert page.hosts == {page.url.split("/")[2]}
    policy = page.locator("meta[http-equiv='Content-Security-Policy']").get_attribute("content")
    assert "default-src 'self'" in policy and "img-src 'self' data: blob:" in policy
    shot(page, "6-planted-markup-as-text")


def test_two_browser_contexts_at_once_stay_isolated(browser, ui_url):
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(2)]
    try:
        ann, ben = (context.new_page() for context in contexts)
        for one in (ann, ben):
            one.goto(ui_url, wait_until="load")
            one.wait_for_selector("#message textarea", timeout=60_000)
        ask(ann, "waterproof hiking boots")
        disliked = titles(ann)[0]
        ann.locator(".rc-dislike").nth(0).click()
        ann.wait_for_function("document.querySelector('#status').innerText.includes('not be shown again')")
        assert "hiking boots" not in ben.locator("#chat").inner_text()  # ann's conversation is not ben's
        ask(ben, "waterproof hiking boots")
        assert disliked in titles(ben)  # and neither is her feedback
        shot(ann, "6-two-tabs-ann")
        shot(ben, "6-two-tabs-ben")
    finally:
        for context in contexts:
            context.close()


def test_a_long_title_of_one_word_stays_inside_its_card(engines, page):
    """Issue #13 (minor): long card titles overflowed their card. Last in this module: it plants an item."""
    bot = engines["products"]
    first = bot.catalog[bot.chat("a waterproof rain jacket").items[0].id]
    long_title = "Stormproof" + "x" * 150
    bot.add_items([first.model_copy(update={"id": f"LONG-{first.id}", "title": long_title})])
    ask(page, "a waterproof rain jacket")
    assert long_title in titles(page)
    overflowing = page.evaluate(
        "[...document.querySelectorAll('.rc-card, .rc-card h4')].filter(e => e.scrollWidth > e.clientWidth).length"
    )
    assert overflowing == 0
    shot(page, "7-long-title")


def test_the_ui_mounted_in_the_http_server_answers_like_the_api(browser, products, tmp_path):
    """`recchat serve` mounts the page at /ui over the API's own engine: the page's first card is the API's first
    item for the same message."""
    import httpx

    from recchat.server.process import ApiServer

    env = {"RECCHAT_DATA_DIR": str(tmp_path), "RECCHAT_LLM__BACKEND": "none"}
    with ApiServer(env, tmp_path / "server.log") as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.hosts = set()
        page.on("request", lambda request: page.hosts.add(request.url.split("/")[2]))
        page.goto(f"{server.base_url}/ui/", wait_until="load")
        page.wait_for_selector("#message textarea", timeout=60_000)
        ask(page, "waterproof hiking boots")
        shown = titles(page)
        shot(page, "7-mounted-in-the-api-server")
        api = httpx.post(f"{server.base_url}/v1/chat", json={"message": "waterproof hiking boots"}).json()
        context.close()
    assert shown and set(shown) <= {item.title for item in products}
    assert shown[0] == api["items"][0]["title"]
    assert page.hosts == {server.base_url.split("/")[2]}


def test_the_docs_page_loaded_swagger_ui_from_a_cdn_and_now_works_offline_with_authorize(browser, tmp_path):
    """Issue #27: /docs loaded Swagger UI from a CDN (a blank page with no internet). Here every request to another
    host is refused, as with no internet: the page still shows the API, and its "Authorize" button sends the key."""
    from recchat.server.process import ApiServer

    key = "docs-key-0123"
    env = {"RECCHAT_DATA_DIR": str(tmp_path), "RECCHAT_LLM__BACKEND": "none", "RECCHAT_API__KEY": key}
    with ApiServer(env, tmp_path / "server.log", args=("--no-ui",)) as server:
        own = server.base_url.split("/")[2]
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        elsewhere: list[str] = []

        def offline(route):
            if route.request.url.split("/")[2] == own:
                return route.continue_()
            elsewhere.append(route.request.url)
            route.abort()

        page.route("**/*", offline)
        page.goto(f"{server.base_url}/docs", wait_until="load")
        search = page.locator("#operations-default-search_v1_items_get")
        search.locator(".opblock-summary").click()
        search.locator("button.try-out__btn").click()

        def executed_status() -> str:
            search.locator("button.execute").click()
            status = search.locator(".live-responses-table tr.response .response-col_status").first
            status.wait_for(timeout=20_000)
            return status.inner_text().strip()

        assert executed_status() == "401"
        page.locator(".auth-wrapper button.authorize").click()
        page.locator(".modal-ux input").fill(key)
        page.locator(".modal-ux button.authorize").click()
        page.locator(".modal-ux button.btn-done").click()
        search.locator("button.btn-clear").click()
        assert executed_status() == "200"
        shot(page, "8-docs-offline-authorized")
        context.close()
    assert elsewhere == []
