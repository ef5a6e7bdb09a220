"""Shared real parts: the bundled encoder, the bundled LLM and the demo catalog, loaded once per run.
Each test that writes gets its own Chroma store in a temp folder."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from recchat.catalog import load_catalog  # noqa: E402
from recchat.chat import RecChat  # noqa: E402
from recchat.config import BUNDLED_CATALOG_DIR, EmbeddingSettings, Settings  # noqa: E402
from recchat.embeddings import load_encoder  # noqa: E402
from recchat.errors import BackendUnavailableError  # noqa: E402
from recchat.llm import LLMBackend, make_backend  # noqa: E402
from recchat.llm.local import gguf_file, prepare_model_dir  # noqa: E402
from recchat.llm.server import LLMServer, free_port  # noqa: E402


@pytest.fixture(scope="session")
def encoder():
    return load_encoder(Settings().embedding)


@pytest.fixture(scope="session")
def multilingual_encoder():
    """multilingual-e5-small: the bundled multilingual encoder."""
    return load_encoder(Settings().embedding.model_copy(update={"model": "multilingual-e5-small"}))


@pytest.fixture(scope="session")
def products():
    return load_catalog(BUNDLED_CATALOG_DIR / "products.jsonl")


@pytest.fixture(scope="session")
def products_zh():
    """The demo shop written in Chinese, prices in yuan."""
    return load_catalog(BUNDLED_CATALOG_DIR / "products-zh.jsonl")


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    """Default settings with a private data folder; models come from the usual cache. The cross-lingual bridge is
    off here, so that engines made for English requests (the UI's movie catalogs among them) do not index in the
    background through the run; `bridged` turns it back on where a test asks in Chinese."""
    return Settings(data_dir=tmp_path_factory.mktemp("data"), embedding={"bridge": ""})


def bridged(settings: Settings) -> Settings:
    """The settings with the default cross-lingual bridge (multilingual-e5-small)."""
    bridge = EmbeddingSettings.model_fields["bridge"].default
    return settings.model_copy(update={"embedding": settings.embedding.model_copy(update={"bridge": bridge})})


@pytest.fixture(scope="session")
def real_backend(settings):
    return make_backend(settings)


@pytest.fixture
def nobody_listening() -> str:
    """An OpenAI-style URL on a loopback port where no server listens: a backend that is down."""
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture(scope="session")
def served_llamacpp(settings, tmp_path_factory) -> Iterator[tuple[LLMServer, str]]:
    """llama.cpp's OpenAI-compatible server with the bundled GGUF, as `recchat serve-llm` starts it."""
    model = str(gguf_file(settings.llm.model))
    server = LLMServer("llamacpp", model, port=free_port(), log=tmp_path_factory.mktemp("serve") / "llamacpp.log")
    with server.start(timeout_s=120):
        yield server, model


@pytest.fixture(scope="session")
def served_llm(settings, tmp_path_factory) -> Iterator[tuple[LLMServer, str]]:
    """A real `transformers serve` (continuous batching) with the bundled SmolLM2 on a free loopback port, as
    `recchat serve-llm` starts it; the server and the model name to ask for."""
    model = str(prepare_model_dir(settings.llm.model, settings.cache_dir / "models"))
    server = LLMServer("transformers", model, port=free_port(), log=tmp_path_factory.mktemp("serve") / "server.log")
    with server.start(timeout_s=300):
        yield server, model


@pytest.fixture(scope="session")
def bot(settings, encoder, real_backend) -> RecChat:
    """The whole engine with the real encoder, Chroma and SmolLM2."""
    return RecChat.from_settings(settings, encoder=encoder, backend=real_backend)


class ScriptedBackend(LLMBackend):
    """Replays given LLM outputs: the only way to make a real model emit exactly the bad
    output a test needs. The real model is exercised by the end-to-end tests."""

    name = "scripted"

    def __init__(self, *outputs: str | Exception):
        self.outputs = list(outputs)
        self.calls: list[list[dict]] = []

    def stream(self, messages, *, schema=None, max_tokens=256) -> Iterator[str]:
        self.calls.append(messages)
        output = self.outputs.pop(0) if len(self.outputs) > 1 else self.outputs[0]
        if isinstance(output, Exception):
            raise output
        for start in range(0, len(output), 7):  # arrive in pieces, as a real stream does
            yield output[start : start + 7]


@pytest.fixture
def scripted_bot(settings, encoder, products):
    """The real engine (encoder, Chroma, catalog) with an LLM whose outputs the test chooses."""

    def make(*outputs: str | Exception, ranking: str = "retrieval", encoder=encoder, catalog=None) -> RecChat:
        chat = settings.chat.model_copy(update={"ranking": ranking})
        return RecChat.from_settings(
            settings.model_copy(update={"chat": chat}), encoder=encoder, backend=ScriptedBackend(*outputs),
            catalog=catalog,
        )

    return make


@pytest.fixture
def down_error():
    return BackendUnavailableError("connection refused (test)")


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, str]]:
    """The local PostgreSQL and Chroma server (`make services-up`), started through the same script when they are not
    running and stopped again after the run. Where PostgreSQL is not installed the tests that need them are skipped;
    under CI (RECCHAT_REQUIRE_SERVICES=1) they fail."""
    from recchat import services as local

    started_here = not local.running()
    try:
        urls = local.up()
    except local.ServiceError as error:
        if os.environ.get("RECCHAT_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"no local services: {error}")
    yield urls
    if started_here:
        local.down()


@pytest.fixture
def postgres_url(services) -> str:
    """A database of its own for one test: a fresh schema in the local cluster, named in the URL's search_path."""
    from recchat.services import fresh_schema

    return fresh_schema(services["RECCHAT_FEEDBACK__URL"], "test")


@contextmanager
def served_here(app) -> Iterator[str]:
    """`app` served by uvicorn in a thread of this process, so a test can reach into its engine; the base URL."""
    import uvicorn

    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    while not served.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{served.servers[0].sockets[0].getsockname()[1]}"
    finally:
        served.should_exit = True
        thread.join(timeout=10)


class GatedBackend(LLMBackend):
    """A model that starts its answer and then waits until the test opens the gate: a turn held mid-answer, as a slow
    model holds it. Its answer is unusable, so the reply is search's."""

    name = "gated"

    def __init__(self) -> None:
        self.started, self.gate = threading.Event(), threading.Event()

    def stream(self, messages, *, schema=None, max_tokens=256) -> Iterator[str]:
        self.started.set()
        self.gate.wait(timeout=60)
        yield "no answer"
