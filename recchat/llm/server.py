"""A model server as a child process: `vllm serve` (from its own environment), llama.cpp's server (CPU, GGUF) or
`transformers serve` (CPU or GPU), started, waited for until healthy, and stopped cleanly. recchat then talks to it
as an OpenAI-compatible API."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal

import openai

from recchat.errors import BackendUnavailableError
from recchat.llm.base import usable_cores

Engine = Literal["llamacpp", "transformers", "vllm"]
HEALTH_PATHS = {"llamacpp": "/v1/models", "transformers": "/health", "vllm": "/health"}
"""What answers once the server is up (llama-cpp-python's server has no /health)."""
VLLM_COMPACT_JSON = ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}']
"""vLLM's grammar otherwise lets the model write whitespace between JSON tokens, and a small model can loop on it
until max_tokens cuts the answer mid-JSON: 3 to 5% of answers on an H200, none with this (docs/gpu.md). It costs
about a fifth more time per token there. vLLM reads it from the server's config only (the request's own
`structured_outputs.disable_any_whitespace` is ignored), and refuses it unless the backend is named."""


def server_command(engine: Engine, model: str, host: str, port: int, vllm_python: str | None = None) -> list[str]:
    """The command line that serves `model` on host:port with the OpenAI API."""
    if engine == "vllm":
        # vLLM pins torch, transformers and fastapi versions that clash with ours: it lives in its own environment,
        # whose `vllm` command sits beside its python.
        python = vllm_python or os.environ.get("RECCHAT_VLLM_PYTHON")
        vllm = str(Path(python).parent / "vllm") if python else "vllm"
        return [vllm, "serve", model, "--host", host, "--port", str(port), *VLLM_COMPACT_JSON]
    if engine == "llamacpp":  # `model` is a .gguf file; the threads are those this process may use
        threads = usable_cores()
        return [
            sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", host, "--port", str(port),
            "--n_ctx", "2048", "--n_threads", str(threads), "--n_threads_batch", str(threads),
            # By default a new request cuts off the one being answered; users must queue instead.
            "--interrupt_requests", "False",
        ]
    transformers_cli = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    return [transformers_cli, "serve", model, "--host", host, "--port", str(port), "--continuous-batching"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for tests and benchmarks that start their own server)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class LLMServer:
    """`with LLMServer("transformers", model_dir, port=8000) as server: ...` serves until the block ends."""

    def __init__(
        self, engine: Engine, model: str, host: str = "127.0.0.1", port: int = 8000, vllm_python: str | None = None,
        log: Path | None = None,
    ):
        self.engine = engine
        self.model = model
        self.command = server_command(engine, model, host, port, vllm_python)
        self.base_url = f"http://{host}:{port}/v1"
        self.health_url = f"http://{host}:{port}{HEALTH_PATHS[engine]}"
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 300.0) -> LLMServer:
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        try:
            self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        except FileNotFoundError as error:
            raise BackendUnavailableError(f"cannot start {self.command[0]!r}: {error}") from error
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackendUnavailableError(
                    f"{self.engine} server exited with code {self.process.returncode} before it was healthy"
                    + (f"; see {self.log}" if self.log else "")
                )
            if self.healthy():
                self._answer_once(max(deadline - time.monotonic(), 1.0))
                return self
            time.sleep(0.5)
        self.stop()
        raise BackendUnavailableError(f"{self.engine} server not healthy after {timeout_s:.0f} s")

    def _answer_once(self, timeout_s: float) -> None:
        """`transformers serve` loads the model at the first request (about 15 s on a CPU), after /health already
        answers: ask once, so that started means ready for users."""
        client = openai.OpenAI(base_url=self.base_url, api_key="EMPTY", timeout=timeout_s, max_retries=0)
        try:
            client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": "Hello"}], max_tokens=1
            )
        except openai.OpenAIError as error:
            self.stop()
            raise BackendUnavailableError(f"{self.engine} server is up but cannot answer: {error}") from error

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, grace_s: float = 10.0) -> None:
        stop_process_group(self.process, grace_s)

    def __enter__(self) -> LLMServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_process_group(process: subprocess.Popen | None, grace_s: float) -> None:
    """SIGTERM to a server started with `start_new_session=True` and its children, then SIGKILL after `grace_s`."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
