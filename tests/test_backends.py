"""One contract, every LLM backend: the in-process transformers model, and a real `transformers serve` reached through
the OpenAI client. Each test runs on both, with the bundled SmolLM2 (greedy decoding, so answers repeat)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from recchat.llm import LLMBackend
from recchat.llm.openai_compatible import OpenAICompatibleBackend

PROMPTS = ["Name a fruit.", "Name a colour.", "Name an animal.", "Name a country."]
SHORT = 24


@pytest.fixture(params=["in-process", "served"], scope="module")
def backend(request, real_backend, settings) -> LLMBackend:
    if request.param == "in-process":
        return real_backend
    server, model = request.getfixturevalue("served_llm")
    return OpenAICompatibleBackend(
        settings.llm.model_copy(update={"backend": "openai", "base_url": server.base_url, "model": model})
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
        openings = ([" ".join(text.split()[:6]) for text in texts] for texts in (alone, threaded, asyncio.run(together())))
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


def test_a_request_abandoned_while_queued_never_reaches_the_in_process_model(real_backend, monkeypatch):
    """One answer holds the model; a second request waits, and its turn is cancelled (a timeout, a closed tab).
    It must leave the queue: no prefill, no token, for nobody."""
    generations = []
    generate = real_backend.model.generate
    monkeypatch.setattr(real_backend.model, "generate", lambda *a, **k: generations.append(1) or generate(*a, **k))
    holding = real_backend.stream(ask("Write a long story about a lighthouse keeper."), max_tokens=48)
    next(holding)

    async def queue_then_give_up() -> None:
        waiting = real_backend.astream(ask(PROMPTS[0]), max_tokens=SHORT)
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
