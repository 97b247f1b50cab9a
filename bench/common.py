"""Shared pieces of the benchmarks: the app under gunicorn, the simulator in a thread, sessions."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
import sqlalchemy as sa
from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

META = {
    "META_APP_ID": "1234567890123456",
    "META_APP_SECRET": "bench-app-secret-" + "b" * 16,
    "META_SYSTEM_USER_ID": "2345678901234567",
    "META_SYSTEM_USER_TOKEN": "EAAbenchsystemusertoken",
    "META_CONFIG_ID": "3456789012345678",
    "META_WEBHOOK_VERIFY_TOKEN": "bench-verify-token",
}


@contextmanager
def fresh_database(server_url: str | None, scratch: str) -> Iterator[str]:
    """A database of this run's own, dropped after: a SQLite file in ``scratch``, or, when ``server_url`` names
    a PostgreSQL server, a new database on it. A run never reads what an earlier one (or a test) left."""
    if not server_url:
        yield f"sqlite:///{scratch}/bench.sqlite"
        return
    server_url = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg://", server_url)
    name = f"esu_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                       "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def server_log(name: str):
    """A file for a server's own output (gunicorn's JSON log, a line per request): the benchmark prints
    figures, and a terminal or pipe drawing thousands of lines a second would take CPU from the servers
    it measures, unevenly."""
    return tempfile.NamedTemporaryFile(prefix=f"esu-bench-{name}-", suffix=".log", delete=False)


def close_log(log, failed: bool) -> None:
    """Kept when the run failed (its path is in the error), removed otherwise."""
    log.close()
    if failed:
        print(f"server output: {log.name}", file=sys.stderr)
    else:
        os.unlink(log.name)


def wait_for_workers(process: subprocess.Popen, log, gunicorn_args: list[str], deadline: float,
                     env: dict[str, str]) -> None:
    """Until every gunicorn worker has imported the app and serves (gunicorn.conf.py logs "Worker ready"):
    connections a load generator opens while one worker still boots all go to the others, for the whole
    run, which then measures fewer workers than it names."""
    workers = int(env.get("WEB_CONCURRENCY", "2"))
    for flag in ("--workers", "-w"):
        if flag in gunicorn_args:
            workers = int(gunicorn_args[gunicorn_args.index(flag) + 1])
    while Path(log.name).read_text(errors="replace").count("Worker ready") < workers:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn's {workers} workers did not all start: see {log.name}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietKeepAliveHandler(WSGIRequestHandler):
    """Keep connections open between requests (as Graph does) and log nothing per request."""

    protocol_version = "HTTP/1.1"

    def log_request(self, *args, **kwargs) -> None:
        pass


def serve_in_thread(wsgi_app) -> str:
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True, request_handler=QuietKeepAliveHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def run_wrk(url: str, script: str, script_args: list[str], seconds: int, connections: int, threads: int,
            server: subprocess.Popen | None = None) -> dict:
    """wrk at fixed concurrency with one of our Lua scripts; answers the JSON summary the script prints.

    Given the gunicorn ``server``, the summary also says whether the load was ``lopsided``, a worker having
    had fewer than half its share of the connections: wrk opens them all at once, and the first worker awake
    can accept every one while the other is still being scheduled (in about one load in five at 8
    connections on a 2-core machine, for esu and the 30-line handler alike). Such a load measures the race
    for connections, not the app: one worker alone runs at about 60 % of the rate of two.
    """
    before = worker_cpu(server) if server else {}
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
         "-s", str(ROOT / "bench" / script), url, "--", *script_args],
        capture_output=True, text=True, check=True,
    )
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    if server:
        used = [ticks - before.get(pid, 0) for pid, ticks in worker_cpu(server).items()]
        # A worker that did less than half its share of the work had fewer than half its share of connections.
        stats["lopsided"] = len(used) > 1 and min(used) < sum(used) / len(used) / 2
    return stats


def worker_pids(master_pid: int) -> list[int]:
    """The process ids of a gunicorn master's workers."""
    return [int(pid) for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()]


def worker_cpu(server: subprocess.Popen) -> dict[int, int]:
    """CPU time (clock ticks) each of a gunicorn server's workers has used so far."""
    used = {}
    for pid in worker_pids(server.pid):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        used[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    return used


def requests_per_second(stats: dict) -> float:
    return stats["requests"] / (stats["duration_us"] / 1e6)


class BareServer:
    """A WSGI app of bench/ (the natural limit, the yardstick) under the same gunicorn config as the app."""

    def __init__(self, module: str, env: dict[str, str] | None = None, gunicorn_args: list[str] = ()):
        self.module = module
        self.env = {**os.environ, **META, **(env or {}), "GUNICORN_LOG_LEVEL": "info"}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gunicorn_args = list(gunicorn_args)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> BareServer:
        # From the project's root, as the app's server: gunicorn reads the same gunicorn.conf.py.
        self.log = server_log(self.module)
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", *self.gunicorn_args,
             f"bench.{self.module}:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_workers(self.process, self.log, self.gunicorn_args, time.monotonic() + 30, self.env)
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        close_log(self.log, failed=exc[0] is not None)


def csrf_session(app_url: str, slug: str) -> tuple[requests.Session, str]:
    """A visitor's session and CSRF token, as the widget gets them when the person clicks."""
    session = requests.Session()
    response = session.get(f"{app_url}/signup/{slug}/session", timeout=10)
    response.raise_for_status()
    return session, response.json()["csrf_token"]


class AppServer:
    """The app under gunicorn on 127.0.0.1 with a migrated database and the given signup pages."""

    def __init__(self, env: dict[str, str], port: int, pages: list[str] = (), gunicorn_args: list[str] | None = None,
                 prepare: bool = True):
        self.env = {**os.environ, **META, "SECRET_KEY": "bench-" + "s" * 32, **env, "GUNICORN_LOG_LEVEL": "info"}
        self.env.setdefault("ESU_ENCRYPTION_KEYS", "Pq2Pq1pYbxWxv4nYkqRlmx1Fd9LkBUc9mmKwM6j3vHo=")
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.pages = pages
        # None: more threads than production's, for benchmarks of many slow callbacks at once; [] or any
        # flags: gunicorn.conf.py (read from the project's root) with those flags over it.
        self.gunicorn_args = (["--workers", "2", "--threads", "8", "--worker-class", "gthread"] if gunicorn_args is None
                              else list(gunicorn_args))
        self.prepare = prepare  # migrate and create the pages first
        self.process: subprocess.Popen | None = None

    def flask(self, *args: str) -> None:
        subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def __enter__(self) -> AppServer:
        if self.prepare:
            self.flask("db", "upgrade")
            for slug in self.pages:
                self.flask("pages", "create", slug, "--title", f"Bench {slug}")
        self.log = server_log("app")
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", *self.gunicorn_args,
             "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for_workers(self.process, self.log, self.gunicorn_args, time.monotonic() + 30, self.env)
        return self

    def __exit__(self, *exc) -> None:
        if self.process:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
            close_log(self.log, failed=exc[0] is not None)
