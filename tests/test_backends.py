"""One contract, every LLM backend: the in-process llama.cpp and transformers engines, and real servers (llama.cpp's
and `transformers serve`) reached through the OpenAI client. Each test runs on each, with the bundled SmolLM2 (greedy
decoding, so answers repeat). Then what happens when the llama.cpp engine cannot run: a missing or corrupt GGUF, or
no llama-cpp-python build.

Without a llama-cpp-python build the llama.cpp cases are skipped, unless RECCHAT_REQUIRE_LLAMACPP=1 (as in CI)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from recchat.config import LLMSettings, Settings
from recchat.errors import ModelFileError, ModelFilesMissingError
from recchat.llm import LLMBackend, factory, make_backend
from recchat.llm.inprocess import InProcessBackend
from recchat.llm.llamacpp import llama_cpp_missing
from recchat.llm.local import TransformersBackend
from recchat.llm.openai_compatible import OpenAICompatibleBackend

MISSING = llama_cpp_missing()
needs_llama_cpp = pytest.mark.skipif(
    MISSING is not None and os.environ.get("RECCHAT_REQUIRE_LLAMACPP") != "1", reason=f"{MISSING}; `make setup`"
)

PROMPTS = ["Name a fruit.", "Name a colour.", "Name an animal.", "Name a country."]
SHORT = 24


@pytest.fixture(scope="module")
def transformers_backend(settings) -> LLMBackend:
    llm = settings.llm.model_copy(update={"backend": "transformers"})
    return make_backend(settings.model_copy(update={"llm": llm}))


@pytest.fixture(params=[pytest.param("llamacpp", marks=needs_llama_cpp), "transformers"], scope="module")
def in_process(request) -> InProcessBackend:
    """Each in-process engine: llama.cpp is the default (`real_backend`)."""
    backend = request.getfixturevalue("real_backend" if request.param == "llamacpp" else "transformers_backend")
    assert backend.name.startswith(request.param)
    return backend


@pytest.fixture(
    params=[
        pytest.param("llamacpp", marks=needs_llama_cpp), "transformers",
        pytest.param("served-llamacpp", marks=needs_llama_cpp), "served-transformers",
    ],
    scope="module",
)
def backend(request, settings) -> LLMBackend:
    if request.param == "llamacpp":
        return request.getfixturevalue("real_backend")
    if request.param == "transformers":
        return request.getfixturevalue("transformers_backend")
    engine = request.param.removeprefix("served-")
    server, model = request.getfixturevalue("served_llamacpp" if engine == "llamacpp" else "served_llm")
    return OpenAICompatibleBackend(
        settings.llm.model_copy(update={"backend": "openai", "base_url": server.base_url, "model": model,
            "engine": engine})
    )


def ask(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]


async def collect(backend: LLMBackend, prompt: str, max_tokens: int = SHORT) -> str:
    return "".join([chunk async for chunk in backend.astream(ask(prompt), max_tokens=max_tokens)])


def test_it_keeps_the_protocol(backend):
    assert isinstance(backend, LLMBackend)


def test_streamed_pieces_make_the_whole_answer(backend):
    chunks = list(backend.stream(ask(PROMPTS[0]), max_tokens=SHORT))
    assert len(chunks) > 1 and "".join(chunks) == backend.generate(ask(PROMPTS[0]), max_tokens=SHORT)


def test_the_async_stream_gives_what_the_stream_gives(backend):
    assert asyncio.run(collect(backend, PROMPTS[1])) == "".join(backend.stream(ask(PROMPTS[1]), max_tokens=SHORT))


def test_concurrent_requests_each_get_their_own_answer(backend):
    """Four requests at once, from threads and from one event loop: each answer is the one it gets alone
    (the in-process model queues them, word for word; the server batches them)."""
    alone = [backend.generate(ask(prompt), max_tokens=SHORT) for prompt in PROMPTS]
    assert len(set(alone)) == len(PROMPTS)  # distinct answers, so a mix-up would show
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        threaded = list(pool.map(lambda prompt: "".join(backend.stream(ask(prompt), max_tokens=SHORT)), PROMPTS))

    async def together() -> list[str]:
        return await asyncio.gather(*(collect(backend, prompt) for prompt in PROMPTS))

    if isinstance(backend, OpenAICompatibleBackend):
        # A batch's arithmetic differs from a lone request's in the last bits, so greedy answers may part ways
        # late; the opening still shows whose answer it is.
        openings = ([" ".join(text.split()[:6]) for text in texts] for texts in (alone, threaded,
            asyncio.run(together())))
        alone, threaded, gathered = openings
    else:
        gathered = asyncio.run(together())
    assert threaded == alone
    assert gathered == alone


def test_an_abandoned_answer_ends_at_once_and_the_next_is_whole(backend):
    story = ask("Write a long story about a lighthouse keeper.")
    started = time.perf_counter()
    backend.generate(story, max_tokens=96)
    whole_s = time.perf_counter() - started
    chunks = backend.stream(story, max_tokens=96)
    started = time.perf_counter()
    next(chunks)
    chunks.close()
    assert time.perf_counter() - started < whole_s / 2  # in-process: generation stopped, the model is free

    async def abandon_then_ask() -> str:
        stream = backend.astream(story, max_tokens=96)
        await anext(stream)
        await stream.aclose()
        return await collect(backend, PROMPTS[2])

    assert asyncio.run(abandon_then_ask()) == backend.generate(ask(PROMPTS[2]), max_tokens=SHORT)


def test_a_request_abandoned_while_queued_never_reaches_the_in_process_model(in_process, monkeypatch):
    """One answer holds the model; a second request waits, and its turn is cancelled (a timeout, a closed tab).
    It must leave the queue: no prefill, no token, for nobody."""
    generations = []
    generate = in_process._generate
    monkeypatch.setattr(in_process, "_generate", lambda *a, **k: generations.append(1) or generate(*a, **k))
    holding = in_process.stream(ask("Write a long story about a lighthouse keeper."), max_tokens=48)
    next(holding)

    async def queue_then_give_up() -> None:
        waiting = in_process.astream(ask(PROMPTS[0]), max_tokens=SHORT)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(waiting), 0.5)
        await waiting.aclose()

    asyncio.run(queue_then_give_up())
    "".join(holding)  # the first answer completes and frees the model
    deadline = time.monotonic() + 30
    while any(t.name == "recchat-stream" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the waiting request's thread ends either way: by leaving, or (wrongly) by generating
    assert not any(t.name == "recchat-stream" for t in threading.enumerate())
    assert generations == [1]


@needs_llama_cpp
def test_the_default_engine_is_llama_cpp_where_it_is_built(settings):
    assert MISSING is None, f"RECCHAT_REQUIRE_LLAMACPP=1 but {MISSING}"
    assert settings.llm.backend == "llamacpp" and make_backend(settings).name.startswith("llamacpp")


def test_without_a_llama_cpp_build_the_transformers_engine_answers_and_says_so_once(settings, monkeypatch, caplog):
    monkeypatch.setattr("recchat.llm.llamacpp.llama_cpp_missing", lambda: "llama-cpp-python is not installed")
    factory._warn_fallback.cache_clear()
    with caplog.at_level(logging.WARNING, logger="recchat.llm.factory"):
        engines = [make_backend(settings) for _ in range(2)]
    assert all(isinstance(engine, TransformersBackend) for engine in engines)
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not installed" in warnings[0] and "transformers" in warnings[0]
    assert engines[0].generate(ask(PROMPTS[0]), max_tokens=4)  # and it answers


@pytest.mark.parametrize("name, content, error, says", [
    ("missing.gguf", None, ModelFilesMissingError, "does not exist"),
    ("corrupt.gguf", b"GGUF" + b"\x00" * 64, ModelFileError, "not a complete GGUF"),
    ("empty.gguf", b"", ModelFileError, "not a complete GGUF"),
    ("weights.bin", b"x", ModelFilesMissingError, "not a .gguf file"),
])
@needs_llama_cpp
def test_a_bad_gguf_file_is_a_clear_error_naming_it(tmp_path, name, content, error, says):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=says) as raised:
        make_backend(Settings(llm=LLMSettings(backend="llamacpp", model=str(path))))
    assert str(path) in str(raised.value)
