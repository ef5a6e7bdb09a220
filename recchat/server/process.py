"""`recchat serve` as a child process, for tests and benchmarks: started on a free port, ready when /healthz
answers, stopped with its whole process group."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from recchat.llm.server import free_port, stop_process_group


class ApiServer:
    """`with ApiServer(env={"RECCHAT_LLM__BACKEND": "none"}, log=path) as server: httpx.get(server.base_url ...)`"""

    def __init__(self, env: dict[str, str] | None = None, log: Path | None = None, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "recchat.cli", "serve", "--port", str(self.port), *args]
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 300.0) -> ApiServer:
        if self.log:
            self.log.parent.mkdir(parents=True, exist_ok=True)
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"recchat serve exited with code {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"recchat serve not healthy after {timeout_s:.0f} s; see {self.log}")

    def stop(self, grace_s: float = 20.0) -> None:
        stop_process_group(self.process, grace_s)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
