"""The OpenAI-compatible path against a real server: `transformers serve` with the bundled SmolLM2 on a free loopback
port, started and stopped by `LLMServer` (what `recchat serve-llm` runs). vLLM's own options are checked on the
request body in test_chat.py; vLLM itself needs a GPU and its own environment."""

from __future__ import annotations

import socket
import time

import pytest

from recchat.chat import RecChat
from recchat.llm.local import prepare_model_dir
from recchat.llm.openai_compatible import OpenAICompatibleBackend
from recchat.llm.server import LLMServer, server_command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(settings, tmp_path_factory):
    model = str(prepare_model_dir(settings.llm.model, settings.cache_dir / "models"))
    server = LLMServer("transformers", model, port=free_port(), log=tmp_path_factory.mktemp("serve") / "server.log")
    with server.start(timeout_s=300):
        yield server, model


def openai_bot(settings, encoder, base_url: str, model: str, tmp_path, timeout_s: float = 120.0) -> RecChat:
    llm = settings.llm.model_copy(update={"backend": "openai", "base_url": base_url, "model": model, "timeout_s": timeout_s})
    feedback = settings.feedback.model_copy(update={"path": tmp_path / "f.sqlite3"})
    return RecChat.from_settings(settings.model_copy(update={"llm": llm, "feedback": feedback}), encoder=encoder)


def test_vllm_runs_from_its_own_environment():
    command = server_command("vllm", "/models/qwen", "127.0.0.1", 8000, vllm_python="/opt/vllm-env/bin/python")
    assert command == ["/opt/vllm-env/bin/vllm", "serve", "/models/qwen", "--host", "127.0.0.1", "--port", "8000"]


def test_a_full_turn_through_the_served_model(served, settings, encoder, products, tmp_path):
    server, model = served
    reply = openai_bot(settings, encoder, server.base_url, model, tmp_path).chat("waterproof hiking boots")
    meta = reply.metadata
    assert meta.backend == f"openai:{server.base_url}"
    assert "unavailable" not in (meta.fallback_reason or "")  # the server answered (usable or not, it was reached)
    assert "first_token_ms" in meta.timings_ms
    assert reply.items and all(products[item.id].title == item.title for item in reply.items)


def test_the_server_streams_in_pieces(served, settings):
    server, model = served
    backend = OpenAICompatibleBackend(settings.llm.model_copy(update={"backend": "openai", "base_url": server.base_url, "model": model}))
    chunks = list(backend.stream([{"role": "user", "content": "Name three colours."}], max_tokens=24))
    assert len(chunks) > 3 and "".join(chunks).strip()


def test_no_server_means_a_retrieval_answer_with_a_notice_at_once(settings, encoder, tmp_path):
    started = time.monotonic()
    reply = openai_bot(settings, encoder, f"http://127.0.0.1:{free_port()}/v1", "m", tmp_path).chat("a warm winter coat")
    assert reply.items and reply.metadata.source == "retrieval"
    assert "unavailable" in reply.metadata.fallback_reason and time.monotonic() - started < 10


def test_a_server_killed_mid_answer_gives_a_retrieval_answer_and_is_retried_later(served, settings, encoder, tmp_path):
    server, model = served  # the last test of the module: it kills the shared server
    llm = settings.llm.model_copy(update={"backend": "openai", "base_url": server.base_url, "model": model, "timeout_s": 20})
    real = OpenAICompatibleBackend(llm)

    class KilledAfterTheFirstToken:
        """The real client; the server dies as soon as the answer has begun (deterministic, unlike a timer)."""

        name = real.name

        def stream(self, *args, **kwargs):
            for position, chunk in enumerate(real.stream(*args, **kwargs)):
                if position == 0:
                    server.stop(grace_s=0)
                yield chunk

    feedback = settings.feedback.model_copy(update={"path": tmp_path / "f.sqlite3"})
    bot = RecChat.from_settings(
        settings.model_copy(update={"llm": llm, "feedback": feedback}), encoder=encoder, backend=KilledAfterTheFirstToken()
    )
    started = time.monotonic()
    reply = bot.chat("waterproof hiking boots")
    assert server.process is not None and server.process.poll() is not None  # it really died mid-answer
    assert reply.items and reply.metadata.source == "retrieval"
    assert "unavailable" in reply.metadata.fallback_reason and time.monotonic() - started < 30
    again = bot.chat("a warm winter coat")  # within the retry pause: no wait for a dead server
    assert "retrying after" in again.metadata.fallback_reason and again.items
