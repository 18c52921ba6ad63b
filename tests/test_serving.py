"""``assistant serve``: gunicorn with threaded workers, JSON logs, metrics added up across workers,
no TensorFlow in a web worker, and a clean stop."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from assistant import db, serving
from benchmarks.loopback import Gunicorn, free_port, gunicorn
from tests.test_db import versions

ROOT = Path(__file__).resolve().parents[1]
ASSISTANT = Path(sys.executable).with_name("assistant")
ROUTE = 'route="/api/v1/conversations"'

pytestmark = pytest.mark.services  # gunicorn subprocesses


def get(url: str, headers: dict[str, str] | None = None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()


def test_assistant_serve_runs_gunicorn_with_the_services_settings(tmp_path, database_url):
    port, log = free_port(), tmp_path / "serve.log"
    environ = {"ASSISTANT_DATABASE_URL": database_url, "ASSISTANT_REPRO_BACKEND": "off",
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "PATH": str(ASSISTANT.parent)}
    with log.open("wb") as output:
        process = subprocess.Popen([str(ASSISTANT), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                                   cwd=tmp_path, env=environ, stdout=output, stderr=subprocess.STDOUT)
    server = Gunicorn(process, port, log)
    try:
        workers = server.wait_for_workers(2)
        for number in range(20):
            status, headers, _ = get(f"{server.url}/api/v1/conversations", {"X-Request-ID": f"req-{number}",
                                                                             "Connection": "close"})
            assert (status, headers["Server"], headers["X-Request-ID"]) == (200, "gunicorn", f"req-{number}")
        _, _, metrics = get(f"{server.url}/metrics")
        counted = [line for line in metrics.splitlines()
                   if line.startswith("assistant_http_requests_total{") and ROUTE in line]
        assert counted and sum(float(line.split()[-1]) for line in counted) == 20  # every worker's counts
        for pid in workers:
            assert "tensorflow" not in Path(f"/proc/{pid}/maps").read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(line["message"] == "Using worker: assistant.web_worker.Worker" for line in lines)
    requests = [line for line in lines if line["logger"] == "assistant.requests"]
    assert [line["request_id"] for line in requests] == [f"req-{number}" for number in range(20)]


def test_the_deploy_config_file_is_the_same_settings():
    def settings(config: str) -> list[str]:
        printed = subprocess.run([sys.executable, "-m", "gunicorn", "--print-config", "--config", config],
                                 cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return [line for line in printed.splitlines() if not line.startswith("config ")]

    from_file = settings("deploy/gunicorn.conf.py")
    assert from_file == settings("python:assistant.serving")
    assert "worker_class                       = assistant.web_worker.Worker" in from_file


def test_a_server_whose_database_is_unreachable_starts_and_says_it_is_not_ready(tmp_path):
    environ = {"ASSISTANT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/secretdb",
               "ASSISTANT_REPRO_BACKEND": "off"}
    with gunicorn(environ, tmp_path / "gunicorn.log", workers=2) as server:  # the master did not exit
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            get(f"{server.url}/readyz")
        assert not_ready.value.code == 503 and b"127.0.0.1" not in not_ready.value.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(f"{server.url}/api/v1/conversations")
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "5"
        assert server.process.poll() is None and len(server.workers()) == 2


def test_the_schema_is_brought_up_before_the_workers_fork_and_alembic_stays_out_of_them(tmp_path):
    """The master migrates a new database through a process of its own: what the workers are forked
    from never imported Alembic, and they find the schema current."""
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    starting = ("import logging, sys; from types import SimpleNamespace; from assistant import serving;"
                "serving.on_starting(SimpleNamespace(app=SimpleNamespace(app_uri=serving.wsgi_app),"
                " log=logging.getLogger('gunicorn.error'))); print('alembic' in sys.modules)")
    environ = {**os.environ, "ASSISTANT_DATABASE_URL": url, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
               "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", starting], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]
    assert versions(url) == [db.SCHEMA_REVISION]


ARENAS = """
import ctypes, sys, threading
from assistant.serving import limit_malloc_arenas
if sys.argv[1] == "limited":
    assert limit_malloc_arenas()
start = threading.Barrier(8)

def allocate():
    start.wait()
    held = [bytearray(4096) for _ in range(2000)]  # above pymalloc's sizes: glibc's malloc serves them
    start.wait()

threads = [threading.Thread(target=allocate) for _ in range(8)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" line per arena, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_the_workers_threads_share_two_malloc_arenas():
    def arenas(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, check=True,
                              cwd=ROOT)
        return sum(line.startswith("Arena ") for line in done.stderr.splitlines())

    assert arenas("limited") <= serving.MALLOC_ARENAS < arenas("default")
