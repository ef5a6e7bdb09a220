"""The recchat web UI: a thin Gradio shell over `RecChat` (chat, stream, feedback). No recommending happens here.

    python ui/app.py [--port 7860] [--catalog products]

Each browser tab keeps its own session id in `gr.State`, so two people never share a conversation or feedback.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import logging
import os
import re
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from recchat.chat import RecChat  # noqa: E402
from recchat.config import Settings  # noqa: E402
from recchat.errors import InvalidArgumentError, RecChatError  # noqa: E402
from recchat.facts import fact_phrases  # noqa: E402
from recchat.models import Constraints, RecommendedItem, field_errors, format_price  # noqa: E402
from recchat.movies import ensure_movie_catalog  # noqa: E402
from recchat.wording import example_requests, state_labels  # noqa: E402

logger = logging.getLogger(__name__)
MOVIE_DATASETS = {"movies": "ml-1m", "movies-ml-100k": "ml-100k"}
"""Movie catalogs are built from MovieLens on first use."""
ANY_CATEGORY = "any category"
WORKING = "_Choosing and explaining…_"
UNEXPECTED = "Sorry: something went wrong on our side (it is logged). Try again, or start a new session."
SHOWN_ATTRIBUTES = 3
REASON_ORIGINS = {
    "llm": "Written by the model, checked against the item's facts",
    "llm-facts": "Facts chosen by the model",
    "facts": "From the item's facts (not the model)",
}
"""Each card says where its reason came from (`RecommendedItem.reason_source`)."""

MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~./])")  # "." and "/" too: bare URLs would become links
# Nothing from other hosts, whatever a catalog or a message carries (the chat renders Markdown); pictures only from
# the hosts the settings name (`image_hosts`).
CONTENT_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:{hosts}; font-src 'self' data:; connect-src 'self'; media-src 'self' data: blob:"
)
IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
                  ".webp": "image/webp"}
MAX_IMAGE_BYTES = 512 * 1024
"""A local picture larger than this is not put in the page (each card carries its picture inline)."""

# System fonts: the bundled one has no bold weight, and a remote font would break offline use.
THEME = gr.themes.Default(font=("ui-sans-serif", "system-ui", "sans-serif"), font_mono=("ui-monospace", "monospace"))
CSS = """
.rc-card {border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px; height: 100%;}
.rc-card h4 {margin: 0 0 2px 0; font-size: 1rem; line-height: 1.3; overflow-wrap: anywhere;}
.rc-price {font-weight: 600; color: var(--color-accent);}
.rc-image {width: 100%; max-height: 140px; object-fit: contain; margin-bottom: 6px;}
.rc-facts {color: var(--body-text-color-subdued); font-size: 0.85rem; margin: 4px 0;}
.rc-reason {font-size: 0.92rem; margin: 4px 0;}
.rc-because {font-size: 0.85rem; font-style: italic; color: var(--color-accent);}
.rc-origin {font-size: 0.75rem; color: var(--body-text-color-subdued);}
.rc-unmet {font-size: 0.85rem; color: #b45309;}
.rc-sold-out {font-size: 0.85rem; font-weight: 600; color: #b91c1c;}
.rc-chip {border-radius: 999px !important; white-space: nowrap; flex: 0 0 auto !important; width: auto !important;}
#chips, #question {flex-wrap: wrap; gap: 6px; align-items: center;}
.rc-option {border-radius: 999px !important; white-space: nowrap; flex: 0 0 auto !important; width: auto !important;}
.rc-question {flex: 0 0 auto !important; width: auto !important;}
.rc-notice {border-left: 4px solid #d97706; padding: 6px 10px; background: rgba(217, 119, 6, 0.08);}
.rc-card-column > .block {flex-grow: 1 !important;}
.rc-card-column .html-container, .rc-card-column .prose {height: 100%;}
.rc-card-column > .row {margin-top: auto !important; flex-grow: 0 !important;}
"""


def launch_options(settings: Settings) -> dict:
    """How the page is served, here, under the HTTP server and in the browser tests: pictures from the hosts the
    settings name may load, nothing else from elsewhere."""
    hosts = "".join(f" https://{host}" for host in settings.image_hosts)
    policy = CONTENT_POLICY.format(hosts=hosts)
    return {
        "css": CSS, "theme": THEME, "footer_links": [],
        "head": f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
    }


CATALOG_FILES = {".csv", ".jsonl"}
"""A catalog given as a file shows as its name ("shop"), not its path."""


@dataclass
class TabState:
    """What one browser tab holds: its session in each catalog, and the items of the last answer."""

    sessions: dict[str, str] = field(default_factory=dict)
    items: list[dict] = field(default_factory=list)
    chips: list[tuple[str, str]] = field(default_factory=list)
    """The conversation's state as (entry, label): what the next message builds on, each removable."""
    question: dict | None = None
    """The last answer's clarifying question (`ClarifyingQuestion` as a dict): its options are buttons."""


class Engines:
    """One `RecChat` per catalog, made on first use and shared by every tab (sessions keep tabs apart)."""

    def __init__(self, settings: Settings, ready: dict[str, RecChat] | None = None, **engine_args):
        """`ready`: engines already made, by catalog (e.g. the HTTP server's, so the page and the API share one)."""
        self.settings = settings
        self.engine_args = engine_args
        self._engines: dict[str, RecChat] = dict(ready or {})
        self._lock = threading.Lock()

    def __getitem__(self, catalog: str) -> RecChat:
        with self._lock:
            if catalog not in self._engines:
                name = catalog
                if catalog in MOVIE_DATASETS:
                    name = str(ensure_movie_catalog(self.settings.generated_catalog_dir, MOVIE_DATASETS[catalog]))
                settings = self.settings.model_copy(update={"catalog": name})
                engine = self._engines[catalog] = RecChat.from_settings(settings, **self.engine_args)
                engine.read_other_languages()  # shoppers may ask in any language: index for them in the background
            return self._engines[catalog]


# --- handlers: plain functions over the engine, tested without a browser -------------------------------------

async def respond(
    engines: Engines, message: str, history: list[dict], state: TabState | None, catalog: str, category: str,
    min_price: float | None, max_price: float | None,
) -> AsyncIterator[tuple[list[dict], TabState, str]]:
    """Stream one answer: (chat history, tab state, notice) after the message and after each item. Async, so
    many tabs' turns run at once on Gradio's event loop while the model works."""
    state = state or TabState()
    history = [*history, {"role": "user", "content": chat_text(message)}]
    try:
        bot = await asyncio.to_thread(engines.__getitem__, catalog)  # the first use of a catalog loads it
        session = state.sessions.get(catalog) or bot.new_session()
        state.sessions[catalog] = session
        filters = price_controls(category, min_price, max_price)
        lines: list[str] = []
        async for event in bot.astream(message, session, filters=filters):
            if event.kind == "message":
                lines = [chat_text(event.message or ""), WORKING]  # the model may take seconds to choose and explain
            elif event.kind == "item" and event.item is not None:
                lines = [line for line in lines if line != WORKING]
                lines.append(f"{len(lines)}. **{chat_text(event.item.title)}**")
            elif event.kind == "done" and event.reply is not None:
                lines = [line for line in lines if line != WORKING]
                items = [item.model_dump() | card_extras(bot, item.id) for item in event.reply.items]
                chips = state_labels(event.reply.metadata.request.state, bot.lexicon, bot.catalog_currency)
                question = event.reply.question
                if question is not None:
                    lines.append(f"_{chat_text(question.text)}_")
                # a new object: Gradio sees the change, redraws
                state = TabState(dict(state.sessions), items, chips, question and question.model_dump())
                meta = event.reply.metadata
                notice = "" if meta.source == "llm" else (
                    "These picks come from search alone: the language model is off, down, or gave no usable answer. "
                    "They still match your request; their notes are the items' own facts."
                )
                yield [*history, {"role": "assistant", "content": "\n".join(lines)}], state, notice
                return
            yield [*history, {"role": "assistant", "content": "\n".join(lines)}], state, ""
    except RecChatError as error:
        yield [*history, {"role": "assistant", "content": chat_text(f"Sorry: {error}")}], state, ""
    except Exception:  # a bug must not leave a bare "Error" badge over stale cards: say so, log it, keep the page
        logger.exception("turn failed in the UI")
        yield [*history, {"role": "assistant", "content": UNEXPECTED}], state, ""


def price_controls(category: str | None, min_price: float | None, max_price: float | None) -> Constraints:
    """The side controls as a turn's filters (0 or empty: any), or `InvalidArgumentError` saying what to type. The
    page's boxes refuse negative numbers, but Gradio's HTTP API takes any number."""
    try:
        return Constraints(
            category=None if category in ("", ANY_CATEGORY, None) else category,
            min_price=min_price or None, max_price=max_price or None,
        )
    except ValidationError as error:
        wrong = "; ".join(f"{field.replace('_', ' ')}: {why}" for field, why in field_errors(error))
        raise InvalidArgumentError(f"the price boxes take amounts of 0 or more, or 0 for any ({wrong})") from None


def chat_text(text: str) -> str:
    """Text from a catalog or a user as the chat's Markdown shows it: literally. Without this, a title such as
    `![](http://host/pixel.png)` or `<img src=...>` became a live image or link that the browser fetched."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def rate(engines: Engines, kind: str, item_id: str, state: TabState | None, catalog: str) -> str:
    """Record a like or dislike from a card; the status line to show."""
    state = state or TabState()
    session = state.sessions.get(catalog)
    title = next((item["title"] for item in state.items if item["id"] == item_id), item_id)
    if session is None:
        return "Ask for something first."
    try:
        engines[catalog].feedback(kind, item_id, session_id=session)
    except RecChatError as error:
        return f"Sorry: {error}"
    except Exception:
        logger.exception("feedback failed in the UI")
        return UNEXPECTED
    if kind == "dislike":
        return f"Noted: you dislike {title}. It will not be shown again."
    return f"Noted: you like {title}. Ask again (\"more like that\") to see the effect."


def drop_chip(engines: Engines, entry: str, state: TabState | None, catalog: str) -> tuple[TabState, str]:
    """Take one entry out of the conversation's state (a chip's x); the tab state to show and the status line."""
    state = state or TabState()
    session = state.sessions.get(catalog)
    label = dict(state.chips).get(entry, entry)
    if session is None:
        return state, "Ask for something first."
    try:
        bot = engines[catalog]
        kept = bot.release(session, entry)
    except RecChatError as error:
        return state, f"Sorry: {error}"
    chips = state_labels(kept, bot.lexicon, bot.catalog_currency)
    kept_state = TabState(dict(state.sessions), state.items, chips, state.question)
    return kept_state, f"Removed {label}: your next message will not use it."


def new_session(state: TabState | None, catalog: str) -> tuple[list[dict], TabState, str]:
    """Forget this tab's conversation in this catalog (the feedback given stays with the old session's user)."""
    sessions = dict(state.sessions) if state else {}
    sessions.pop(catalog, None)
    return [], TabState(sessions), "New session started."


def categories(engines: Engines, catalog: str) -> list[str]:
    try:
        return [ANY_CATEGORY, *engines[catalog].catalog.categories()]
    except RecChatError:
        return [ANY_CATEGORY]


def greeting(engines: Engines, catalog: str) -> str:
    """The page's heading, with requests a shopper of this catalog might make, from its own data."""
    try:
        bot = engines[catalog]
    except RecChatError:
        return "## recchat\nAsk for what you want."
    examples = ", ".join(f"*{chat_text(example)}*" for example in example_requests(bot.catalog, bot.lexicon,
                                                                                 bot.catalog_currency))
    return "## recchat\nAsk for what you want" + (f": {examples}" if examples else ".")


def card_extras(bot: RecChat, item_id: str) -> dict:
    """What a card shows beyond the reply's item: its key facts as reasons read them ("weight 265 g", "noise
    cancelling"; never a stock count or a code), and its picture."""
    item = bot.catalog[item_id]
    price = format_price(item.price, item.currency) if item.price is not None else None
    return {"facts": [phrase for phrase in fact_phrases(item) if phrase != price],
            "image": image_source(item.image, bot.settings.image_hosts)}


def image_source(image: str | None, hosts: list[str]) -> str | None:
    """What a card's <img> loads: an https URL on a host the settings allow, or a local picture (at most
    `MAX_IMAGE_BYTES`) inline as data; None for anything else, which the page would refuse or should not fetch."""
    if not image:
        return None
    address = urlsplit(image)
    if address.scheme in ("http", "https"):
        return image if address.scheme == "https" and address.hostname in hosts else None
    path = Path(image)
    kind = IMAGE_SUFFIXES.get(path.suffix.lower())
    if kind is None or not path.is_file() or path.stat().st_size > MAX_IMAGE_BYTES:
        return None
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def card_html(item: dict) -> str:
    """One item as a card: its picture, title, price, key facts, the reason, and why feedback moved it."""
    shown = RecommendedItem.model_validate(item)
    price = format_price(shown.price, shown.currency) if shown.price is not None else ""
    facts = item.get("facts", [])[:SHOWN_ATTRIBUTES]
    image = item.get("image")
    parts = [
        f"<div class='rc-card' data-item-id='{html.escape(shown.id)}'>",
        f"<img class='rc-image' src='{html.escape(image)}' alt=''>" if image else "",
        f"<h4>{html.escape(shown.title)}</h4>",
        f"<div class='rc-price'>{html.escape(price)}</div>" if price else "",
        "" if shown.in_stock else "<div class='rc-sold-out'>Sold out</div>",
        f"<div class='rc-facts'>{html.escape(' · '.join(facts))}</div>" if facts else "",
        f"<div class='rc-reason'>{html.escape(shown.reason)}</div>",
        f"<div class='rc-origin' data-source='{shown.reason_source}'>{REASON_ORIGINS[shown.reason_source]}</div>",
        f"<div class='rc-because'>{html.escape(shown.because)}</div>" if shown.because else "",
        f"<div class='rc-unmet'>Nearest, but not {html.escape('; '.join(shown.unmet))}</div>" if shown.unmet else "",
        "</div>",
    ]
    return "".join(parts)


# --- layout --------------------------------------------------------------------------------------------------

def build_app(engines: Engines, catalogs: list[str]) -> gr.Blocks:
    with gr.Blocks(title="recchat") as app:
        state = gr.State(None)
        header = gr.Markdown(greeting(engines, catalogs[0]), elem_id="greeting")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240, elem_id="controls"):
                shown = [(Path(name).stem if Path(name).suffix in CATALOG_FILES else name, name) for name in catalogs]
                catalog = gr.Dropdown(shown, value=catalogs[0], label="Catalog", elem_id="catalog")
                category = gr.Dropdown(
                    categories(engines, catalogs[0]), value=ANY_CATEGORY, label="Category", elem_id="category"
                )
                with gr.Row():
                    min_price = gr.Number(
                        label="Min price", info="0: any", minimum=0, min_width=90, elem_id="min-price"
                    )
                    max_price = gr.Number(
                        label="Max price", info="0: any", minimum=0, min_width=90, elem_id="max-price"
                    )
                restart = gr.Button("New session", size="sm", elem_id="new-session")
            with gr.Column(scale=4, min_width=300):
                chatbot = gr.Chatbot(elem_id="chat", height=300, feedback_options=None, buttons=[], show_label=False)
                notice = gr.Markdown(elem_id="notice", elem_classes=["rc-notice"], visible=False)
                with gr.Row():
                    message = gr.Textbox(
                        placeholder="What are you looking for?", show_label=False, scale=5, min_width=180,
                        elem_id="message",
                    )
                    send = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="send")
                status = gr.Markdown(elem_id="status")

        async def ask(text, history, tab, shop, group, low, high):
            if not text or not text.strip():
                yield history, tab, gr.Markdown(visible=False), "Type what you are looking for first.", text
                return
            async for history_now, tab_now, note in respond(engines, text, history, tab, shop, group, low, high):
                yield history_now, tab_now, gr.Markdown(note, visible=bool(note)), "", ""

        inputs = [message, chatbot, state, catalog, category, min_price, max_price]
        outputs = [chatbot, state, notice, status, message]

        def answer(said: str):
            """A question's option as a handler: it sends the option's message, as if typed."""
            async def send_option(history, tab, shop, group, low, high):
                async for update in ask(said, history, tab, shop, group, low, high):
                    yield update[:-1]  # the message box keeps what the shopper may be typing
            return send_option

        @gr.render(inputs=[state, catalog])
        def cards(tab: TabState | None, shop: str):
            items = tab.items if tab else []
            with gr.Row(elem_id="chips"):  # what the next message builds on; x takes one away
                for entry, label in tab.chips if tab else []:
                    chip = gr.Button(f"{label} ×", size="sm", min_width=40, scale=0, elem_classes=["rc-chip"])
                    chip.click(lambda tab, shop, entry=entry: drop_chip(engines, entry, tab, shop), [state, catalog],
                               [state, status])
            question = tab.question if tab else None
            if question is not None:
                with gr.Row(elem_id="question"):  # a click answers with that option, as if typed
                    gr.Markdown(question["text"], elem_classes=["rc-question"])
                    for option in question["options"]:
                        button = gr.Button(option["label"], size="sm", min_width=40, scale=0,
                                           elem_classes=["rc-option"])
                        button.click(answer(option["message"]), inputs[1:], outputs[:-1])
            with gr.Row(equal_height=True, elem_id="cards"):
                for item in items:
                    with gr.Column(min_width=220, elem_classes=["rc-card-column"]):
                        gr.HTML(card_html(item))
                        with gr.Row():
                            like = gr.Button("Like", size="sm", min_width=60, elem_classes=["rc-like"])
                            dislike = gr.Button("Dislike", size="sm", min_width=60, elem_classes=["rc-dislike"])
                        like.click(lambda tab, shop, item_id=item["id"]: rate(engines, "like", item_id, tab, shop),
                                   [state, catalog], [status])
                        dislike.click(
                            lambda tab, shop, item_id=item["id"]: rate(engines, "dislike", item_id, tab, shop),
                            [state, catalog], [status],
                        )

        message.submit(ask, inputs, outputs)
        send.click(ask, inputs, outputs)
        restart.click(lambda tab, shop: new_session(tab, shop), [state, catalog], [chatbot, state, status])
        catalog.change(
            lambda shop, tab: (
                gr.Dropdown(choices=categories(engines, shop), value=ANY_CATEGORY), greeting(engines, shop),
                *new_session(tab, shop),
            ),
            [catalog, state], [category, header, chatbot, state, status],
        )
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The recchat web UI.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--catalogs", default="products,movies", help="comma-separated catalog names (first: default)")
    args = parser.parse_args(argv)
    engines = Engines(Settings())
    app = build_app(engines, args.catalogs.split(","))
    print(f"recchat UI: http://{args.host}:{args.port}", flush=True)
    # Turns are async and each is bounded by llm.timeout_s, so tabs need not wait for one another.
    app.queue(default_concurrency_limit=None).launch(
        server_name=args.host, server_port=args.port, share=False, **launch_options(engines.settings)
    )


if __name__ == "__main__":
    main()
