"""Local services for development and tests: a PostgreSQL cluster (Debian's `postgresql`, started with `initdb` and
`pg_ctl`) and a Chroma server (`chroma run`, installed with chromadb), each under `.services/` in the project and
listening on 127.0.0.1 only.

    python -m recchat.services up       # `make services-up`: start both, write .services.env
    python -m recchat.services down     # `make services-down`: stop both (their data stays in .services/)
    python -m recchat.services status

`.services.env` holds the `RECCHAT_FEEDBACK__URL` and `RECCHAT_VECTORSTORE__URL` lines to use them. The cluster
trusts local connections (a development set-up, never exposed): no password to keep anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from recchat.config import PROJECT_ROOT
from recchat.llm.server import free_port

SERVICES_DIR = PROJECT_ROOT / ".services"
ENV_FILE = PROJECT_ROOT / ".services.env"
STATE_FILE = SERVICES_DIR / "state.json"
POSTGRES_USER = "recchat"
DATABASE = "recchat"


class ServiceError(RuntimeError):
    """A service cannot be started or stopped; the message says what to install or look at."""


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's programs."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda path: int(path.parts[-3]))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise ServiceError("PostgreSQL is not installed: apt-get install -y postgresql (Debian's package, any version)")


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ServiceError(f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def saved_state() -> dict:
    return json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}


def start_postgres(state: dict) -> int:
    """The cluster under .services/postgres, created on first use; its port."""
    programs = postgres_bin()
    data = SERVICES_DIR / "postgres"
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        _run(_as_owner([str(programs / "initdb"), "-D", str(data), "-A", "trust", "-U", POSTGRES_USER, "-E", "UTF8"]))
    port = state.get("postgres_port") or free_port()
    if subprocess.run(_as_owner([str(programs / "pg_ctl"), "-D", str(data), "status"]), capture_output=True).returncode:
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
        _run(_as_owner([str(programs / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-o", options,
                        "-w", "-t", "60", "start"]))
    databases = _run(_as_owner([str(programs / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER,
                                "-d", "postgres", "-Atc", "SELECT datname FROM pg_database"])).split()
    if DATABASE not in databases:
        _run(_as_owner([str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER,
                        DATABASE]))
    return port


def stop_postgres() -> None:
    data = SERVICES_DIR / "postgres"
    if (data / "postmaster.pid").exists():
        _run(_as_owner([str(postgres_bin() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]))


def start_chroma(state: dict) -> tuple[int, int]:
    """`chroma run` over .services/chroma; its port and process id."""
    import httpx

    port, pid = state.get("chroma_port"), state.get("chroma_pid")
    if port and pid and _alive(pid):
        return port, pid
    port = port or free_port()  # a restart keeps the address the workers know
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        raise ServiceError(f"no {chroma}: chromadb's `chroma` command comes with `make setup`")
    log = open(SERVICES_DIR / "chroma.log", "ab")  # noqa: SIM115 - the server keeps it
    process = subprocess.Popen(
        [str(chroma), "run", "--path", str(SERVICES_DIR / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"chroma run exited with code {process.returncode}; see {SERVICES_DIR / 'chroma.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).status_code == 200:
                return port, process.pid
        except httpx.HTTPError:
            time.sleep(0.3)
    raise ServiceError(f"the Chroma server did not answer within 60 s; see {SERVICES_DIR / 'chroma.log'}")


def stop_chroma(state: dict) -> None:
    pid = state.get("chroma_pid")
    if pid and _alive(pid):
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            if not _alive(pid):
                return
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def up() -> dict[str, str]:
    """Start both services (those already running are kept); the settings that use them, also in .services.env."""
    SERVICES_DIR.mkdir(exist_ok=True)
    state = saved_state()
    state["postgres_port"] = start_postgres(state)
    state["chroma_port"], state["chroma_pid"] = start_chroma(state)
    STATE_FILE.write_text(json.dumps(state))
    settings = {
        "RECCHAT_FEEDBACK__URL": f"postgresql://{POSTGRES_USER}@127.0.0.1:{state['postgres_port']}/{DATABASE}",
        "RECCHAT_VECTORSTORE__URL": f"http://127.0.0.1:{state['chroma_port']}",
    }
    ENV_FILE.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
    return settings


def down() -> None:
    state = saved_state()
    stop_chroma(state)
    stop_postgres()
    STATE_FILE.unlink(missing_ok=True)
    ENV_FILE.unlink(missing_ok=True)


def running() -> dict[str, str]:
    """The settings of the running services, from .services.env; empty when they are down."""
    if not ENV_FILE.exists():
        return {}
    lines = (line.partition("=") for line in ENV_FILE.read_text().splitlines() if "=" in line)
    return {name: value for name, _, value in lines}


def fresh_schema(url: str, prefix: str = "scratch") -> str:
    """`url` with a new, empty schema of its own as the search path: a separate feedback log in the same database,
    for a test or a benchmark run."""
    import uuid

    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    return f"{url}?options=-csearch_path%3D{schema}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recchat.services", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            for name, value in up().items():
                print(f"{name}={value}")
            print(f"(also in {ENV_FILE}; `make services-down` stops them)", file=sys.stderr)
        elif args.action == "down":
            down()
        else:
            print("\n".join(f"{name}={value}" for name, value in running().items()) or "services are down")
    except ServiceError as error:
        print(f"recchat services: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
