"""The OpenAI-compatible path against a real server: `transformers serve` (and llama.cpp's server, for
`recchat serve-llm --engine llamacpp`) with the bundled SmolLM2 on a free loopback port, started and stopped by
`LLMServer` (what `recchat serve-llm` runs). vLLM's own options are checked on the
request body in test_chat.py; vLLM itself needs a GPU and its own environment."""

from __future__ import annotations

import asyncio
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest
from test_backends import needs_llama_cpp

from recchat.chat import RecChat
from recchat.config import LLMSettings
from recchat.llm.openai_compatible import OpenAICompatibleBackend
from recchat.llm.server import free_port, server_command


def openai_llm(settings, base_url: str, model: str, **fields) -> LLMSettings:
    """The test settings' LLM section, pointed at an OpenAI-compatible server."""
    return settings.llm.model_copy(update={"backend": "openai", "base_url": base_url, "model": model, **fields})


def make_bot(settings, encoder, llm: LLMSettings, tmp_path, backend=None, store: str = "f.sqlite3") -> RecChat:
    """The real engine with these LLM settings, its own feedback file, and `backend` if one is given."""
    feedback = settings.feedback.model_copy(update={"path": tmp_path / store})
    return RecChat.from_settings(
        settings.model_copy(update={"llm": llm, "feedback": feedback}), encoder=encoder, backend=backend
    )


def test_llama_cpp_gets_the_schema_in_its_own_form():
    """llama.cpp's server refuses response_format 'json_schema' (HTTP 500: "Input should be 'text' or
    'json_object'"); it takes 'json_object' with a schema."""
    schema = {"type": "object"}
    llamacpp = LLMSettings(backend="openai", base_url="http://127.0.0.1:1/v1", model="m.gguf", engine="llamacpp")
    body = OpenAICompatibleBackend(llamacpp).request([{"role": "user", "content": "hi"}], schema, 8)
    assert body["response_format"] == {"type": "json_object", "schema": schema} and "extra_body" not in body


def test_vllm_runs_from_its_own_environment():
    command = server_command("vllm", "/models/qwen", "127.0.0.1", 8000, vllm_python="/opt/vllm-env/bin/python")
    assert command[:7] == ["/opt/vllm-env/bin/vllm", "serve", "/models/qwen", "--host", "127.0.0.1", "--port", "8000"]
    # compact JSON: whitespace the grammar allowed once let a small model loop until max_tokens cut the answer
    assert command[7:] == ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}']


def test_a_full_turn_through_the_served_model(served_llm, settings, encoder, products, tmp_path):
    server, model = served_llm
    reply = make_bot(settings, encoder, openai_llm(settings, server.base_url, model, timeout_s=120), tmp_path).chat(
        "waterproof hiking boots"
    )
    meta = reply.metadata
    assert meta.backend == f"openai:{server.base_url}"
    assert "unavailable" not in (meta.fallback_reason or "")  # the server answered (usable or not, it was reached)
    assert "first_token_ms" in meta.timings_ms
    assert reply.items and all(products[item.id].title == item.title for item in reply.items)


def test_the_server_streams_in_pieces(served_llm, settings):
    server, model = served_llm
    backend = OpenAICompatibleBackend(openai_llm(settings, server.base_url, model))
    chunks = list(backend.stream([{"role": "user", "content": "Name three colours."}], max_tokens=24))
    assert len(chunks) > 3 and "".join(chunks).strip()


def test_no_server_means_a_retrieval_answer_with_a_notice_at_once(settings, encoder, nobody_listening, tmp_path):
    started = time.monotonic()
    reply = make_bot(settings, encoder, openai_llm(settings, nobody_listening, "m", timeout_s=120), tmp_path).chat(
        "a warm winter coat"
    )
    assert reply.items and reply.metadata.source == "retrieval"
    assert "unavailable" in reply.metadata.fallback_reason and time.monotonic() - started < 10


def test_a_server_killed_mid_answer_gives_a_retrieval_answer_and_is_retried_later(
    served_llm, settings, encoder, tmp_path
):
    server, model = served_llm  # it kills the shared server, and starts it again for the tests after it
    llm = openai_llm(settings, server.base_url, model, timeout_s=20)
    real = OpenAICompatibleBackend(llm)

    class KilledAfterTheFirstToken:
        """The real client; the server dies as soon as the answer has begun (deterministic, unlike a timer)."""

        name = real.name

        def stream(self, *args, **kwargs):
            for position, chunk in enumerate(real.stream(*args, **kwargs)):
                if position == 0:
                    server.stop(grace_s=0)
                yield chunk

    bot = make_bot(settings, encoder, llm, tmp_path, backend=KilledAfterTheFirstToken())
    started = time.monotonic()
    try:
        reply = bot.chat("waterproof hiking boots")
        answered_in = time.monotonic() - started
        assert server.process is not None and server.process.poll() is not None  # it really died mid-answer
        again = bot.chat("a warm winter coat")  # within the retry pause: no wait for a dead server
    finally:
        server.start(timeout_s=300)
    assert reply.items and reply.metadata.source == "retrieval"
    assert "unavailable" in reply.metadata.fallback_reason and answered_in < 30
    assert "retrying after" in again.metadata.fallback_reason and again.items


SHOPPERS = [
    ("a warm winter coat", "under $300"),
    ("waterproof hiking boots", "cheaper ones"),
    ("running shoes", "under $100"),
    ("a leather wallet", "cheaper ones"),
    ("a backpack for travel", "under $120"),
    ("a wool scarf", "cheaper ones"),
    ("sunglasses", "under $150"),
    ("a rain jacket", "cheaper ones"),
]


class InFlight:
    """The real backend, counting how many of its answers are being streamed at once."""

    def __init__(self, real: OpenAICompatibleBackend):
        self.real, self.name = real, real.name
        self.now = self.most = 0

    async def astream(self, *args, **kwargs):
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            async for chunk in self.real.astream(*args, **kwargs):
                yield chunk
        finally:
            self.now -= 1


def test_eight_concurrent_sessions_reach_the_server_together_without_cross_talk(
    served_llm, settings, encoder, tmp_path
):
    server, model = served_llm
    llm = openai_llm(settings, server.base_url, model, timeout_s=240, max_new_tokens=48)
    served = InFlight(OpenAICompatibleBackend(llm))
    bot = make_bot(settings, encoder, llm, tmp_path, backend=served)

    async def shop(user: str, first: str, follow_up: str):
        session = bot.new_session(user_id=user)
        return [await bot.achat(first, session), await bot.achat(follow_up, session)]

    async def everyone():
        return await asyncio.gather(*(shop(f"u{n}", *messages) for n, messages in enumerate(SHOPPERS)))

    conversations = asyncio.run(everyone())
    assert served.most == len(SHOPPERS)  # every session's first answer was being generated at the same time

    # Alone and one after another, without an LLM: the ranking decides the items, so they must be the same.
    no_llm = settings.llm.model_copy(update={"backend": "none"})
    alone = make_bot(settings, encoder, no_llm, tmp_path, store="alone.sqlite3")
    for n, ((first, follow_up), replies) in enumerate(zip(SHOPPERS, conversations)):
        session = alone.new_session(user_id=f"u{n}")
        expected = [alone.chat(first, session), alone.chat(follow_up, session)]
        assert [r.metadata.user_id for r in replies] == [f"u{n}"] * 2
        assert [r.metadata.turn for r in replies] == [1, 2]
        assert replies[0].metadata.session_id == replies[1].metadata.session_id
        # the follow-up kept its own topic
        assert replies[1].metadata.request.query == replies[0].metadata.request.query
        assert [r.message for r in replies] == [e.message for e in expected]
        assert [[i.id for i in r.items] for r in replies] == [[i.id for i in e.items] for e in expected]
        assert "unavailable" not in (replies[0].metadata.fallback_reason or "")


def test_a_server_that_never_answers_costs_a_bounded_wait(settings, encoder, tmp_path):
    """A server that takes the connection and never replies: both APIs answer from retrieval once the
    deadline passes, with a notice."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel accepts connections; nobody ever reads or replies
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        llm = openai_llm(settings, url, "m", timeout_s=2.0, max_retries=0, retry_after_s=0)
        bot = make_bot(settings, encoder, llm, tmp_path)
        started = time.monotonic()
        reply = asyncio.run(bot.achat("a warm winter coat"))
        async_s = time.monotonic() - started
        started = time.monotonic()
        sync_reply = bot.chat("waterproof hiking boots")
        sync_s = time.monotonic() - started
    for answer in (reply, sync_reply):
        assert answer.items and answer.metadata.source == "retrieval"
        assert "unavailable" in answer.metadata.fallback_reason
    assert async_s < 6 and sync_s < 6  # 2 s allowed, plus retrieval


def test_a_failing_call_is_retried_with_backoff_then_answered_from_retrieval(settings, encoder, tmp_path):
    """A server answering 503 (overloaded) to every call: the client retries `llm.max_retries` times, waiting
    longer each time, then the turn falls back; with no retries it falls back at once."""
    attempts: list[float] = []

    class Overloaded(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            attempts.append(time.monotonic())
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for retries in (2, 0):
            attempts.clear()
            llm = openai_llm(settings, f"http://127.0.0.1:{server.server_port}/v1", "m", max_retries=retries)
            bot = make_bot(settings, encoder, llm, tmp_path, store=f"{retries}.sqlite3")
            reply = asyncio.run(bot.achat("a warm winter coat"))
            assert reply.items and reply.metadata.source == "retrieval" and "503" in reply.metadata.fallback_reason
            assert len(attempts) == retries + 1
            pauses = [later - earlier for earlier, later in zip(attempts, attempts[1:])]
            assert all(pause >= 0.25 for pause in pauses) and pauses == sorted(pauses)  # backoff, growing
    finally:
        server.shutdown()


@pytest.mark.parametrize("engine", [pytest.param("llamacpp", marks=needs_llama_cpp), "transformers"])
def test_the_serve_llm_command_serves_until_terminated(settings, encoder, tmp_path, engine):
    """`recchat serve-llm` as a user runs it: it prints the settings once the model answers, a turn uses them,
    and SIGTERM stops it and its server. llama.cpp's server honours the schema: the model's chosen facts arrive."""
    recchat = str(Path(sys.executable).parent / "recchat")
    command = subprocess.Popen(
        [recchat, "serve-llm", "--engine", engine, "--port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        line = command.stdout.readline()  # blocks until the server is up and answering, or the command failed
        assert line.startswith("serving at "), line
        printed = dict(word.split("=", 1) for word in line.split() if word.startswith("RECCHAT_LLM__"))
        assert printed["RECCHAT_LLM__BACKEND"] == "openai"
        base_url, model = printed["RECCHAT_LLM__BASE_URL"], printed["RECCHAT_LLM__MODEL"]
        served = openai_llm(settings, base_url, model, timeout_s=120, engine=printed.get("RECCHAT_LLM__ENGINE",
            "generic"))
        reply = make_bot(settings, encoder, served, tmp_path).chat("waterproof hiking boots")
        assert reply.items and "unavailable" not in (reply.metadata.fallback_reason or "")
        if engine == "llamacpp":
            assert model.endswith(".gguf") and served.engine == "llamacpp"
            assert reply.metadata.source == "llm" and reply.metadata.reason_sources["llm-facts"] == len(reply.items)
        command.send_signal(signal.SIGTERM)
        assert command.wait(60) == 0
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
    with pytest.raises(openai.APIConnectionError):  # the server went with it
        openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0).models.list()
