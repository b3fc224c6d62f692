"""What the Python suites that drive REAL agents share (stdlib only).

Used by clients/python/test_fingerv7_sidecar.py and test/legacy-client/test_legacy_orchestrator_api.py.
Each suite puts this directory on sys.path itself, so it runs as the README says
(``python3 -m unittest discover -s clients/python``) with no PYTHONPATH.

``AgentSandbox`` is one throwaway PostgreSQL database holding a catalog, one private Redis
key prefix, and the agent processes (node + tsx, agent/main.ts) started in them; ``close()``
stops the agents and removes the database and the keys.

Needs node, psql and running PostgreSQL and Redis (TEST_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/postgres; TEST_REDIS_URL, default redis://127.0.0.1:6379).
A missing service is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Callable, Dict, List

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ADMIN_DB = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")

# Short timings so failures and restarts show within seconds; WORKER_LEASE lies between
# HEARTBEAT_INTERVAL and HEARTBEAT_TIMEOUT, as the agent requires.
FAST_TIMINGS: Dict[str, str] = {
    "HEARTBEAT_INTERVAL": "0.5",
    "HEARTBEAT_TIMEOUT": "3",
    "WORKER_LEASE": "1.8",
    "LEADER_LEASE_TTL": "2",
    "FALLBACK_GRACE": "5",
    "CATALOG_REFRESH": "1",
    "DRAIN_TIMEOUT": "3",
}


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls `check` until it holds; returns the seconds waited, or fails the test."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url: str, db: str) -> str:
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + db, u.query, u.fragment))


def psql(url: str, sql: str) -> str:
    if not shutil.which("psql"):
        raise RuntimeError("psql is required for these tests (Debian: apt-get install postgresql-client)")
    done = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"PostgreSQL is required for these tests ({url}): {done.stderr.strip()}")
    return done.stdout


class AgentSandbox:
    """A fresh database `t_<tag>_<random>` with `catalog_sql` run in it, and a Redis key prefix of the same name."""

    def __init__(self, tag: str, catalog_sql: str) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.name = f"t_{tag}_{self.tag}"
        self.prefix = self.name
        psql(ADMIN_DB, f"create database {self.name}")
        self.db_url = with_database(ADMIN_DB, self.name)
        self.procs: List[subprocess.Popen] = []
        psql(self.db_url, catalog_sql)

    def agent_env(self, instance_id: str, port: int, **settings: str) -> Dict[str, str]:
        """An agent's whole environment: this sandbox, FAST_TIMINGS, then `settings`."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "DATABASE_URL": self.db_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": self.prefix,
            "INSTANCE_ID": instance_id,
            "MAX_STREAMS": "20",
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "warn",
            **FAST_TIMINGS,
            **settings,
        }

    def start_agent(self, env: Dict[str, str]) -> subprocess.Popen:
        """Starts an agent with `env` (see agent_env) and returns once its HTTP port answers."""
        node = os.environ.get("NODE", shutil.which("node") or "node")
        name = env["INSTANCE_ID"]
        url = f"http://127.0.0.1:{env['PORT']}"
        os.makedirs(os.path.join(ROOT, "test-output"), exist_ok=True)
        log_path = os.path.join(ROOT, "test-output", f"{self.prefix}-{name}.log")
        with open(log_path, "ab") as log:  # the agent's log, for a failing run
            proc = subprocess.Popen([node, "--import", "tsx", "agent/main.ts"], cwd=ROOT, env=env, stdout=log, stderr=log)
        self.procs.append(proc)

        def listening() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"agent {name} exited at start with code {proc.returncode}; see {log_path}")
            try:
                urllib.request.urlopen(url + "/health", timeout=1).close()
                return True
            except urllib.error.HTTPError:
                return True  # 503 while it settles: it listens
            except OSError:
                return False

        wait_until(listening, 40, f"agent {name} to listen")
        return proc

    def close(self) -> None:
        """Kills the agents still running (frozen ones too), drops the database, deletes the keys."""
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(10)
        try:
            psql(ADMIN_DB, f"drop database if exists {self.name} with (force)")
        finally:
            if shutil.which("redis-cli"):
                u = urllib.parse.urlsplit(REDIS_URL)
                cli = ["redis-cli", "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 6379)]
                # The pattern is Keys.pattern (shared/keys.ts), which Python cannot import.
                keys = subprocess.run([*cli, "--scan", "--pattern", f"{self.prefix}:*"], capture_output=True, text=True).stdout.split()
                if keys:
                    subprocess.run([*cli, "del", *keys], capture_output=True)
