"""Tests for fingerv7_sidecar (run: python3 -m unittest discover -s clients/python).

Two parts:
* ``StubAgentTests``: a scripted HTTP server stands in for the agent, to check the rules
  precisely (the lease counts from the request's send time, a late answer is not acted on,
  the view is replaced stops-first and acknowledged only afterwards, reconnect backoff).
* ``RealAgentTests``: a REAL agent (node + tsx, agent/main.ts, started by test/pyhelpers/agent_harness.py) on a throwaway PostgreSQL
  database (created with psql) and a private Redis key prefix; the client follows it
  through catalog changes, a frozen agent (SIGSTOP: the lease runs out, streams stop) and
  an agent restart (reconnect).

Needs node, psql and running PostgreSQL and Redis (TEST_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/postgres; TEST_REDIS_URL, default redis://127.0.0.1:6379).
A missing service is an error, never a skip.
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "pyhelpers"))
from agent_harness import AgentSandbox, free_port, psql, wait_until  # noqa: E402
from fingerv7_sidecar import SidecarClient, Stream  # noqa: E402

# The client's warnings (lease ran out, agent unreachable) are expected here; keep the output clean.
logging.getLogger("fingerv7_sidecar").setLevel(logging.ERROR)


class Recorder:
    """Collects the client's callbacks with the time they happened."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: List[Tuple[float, str, Any, str]] = []
        self.running: Dict[Any, Stream] = {}

    def on_start(self, stream: Stream) -> None:
        with self.lock:
            assert stream.id not in self.running, f"stream {stream.id} started twice"
            self.running[stream.id] = stream
            self.events.append((time.monotonic(), "start", stream.id, ""))

    def on_stop(self, stream: Stream, reason: str) -> None:
        with self.lock:
            assert stream.id in self.running, f"stream {stream.id} stopped while not running"
            del self.running[stream.id]
            self.events.append((time.monotonic(), "stop", stream.id, reason))

    def ids(self) -> set:
        with self.lock:
            return set(self.running)


# ---- a scripted stand-in for the agent ------------------------------------------------


class StubAgent:
    """Answers GET /v1/assignment from `script(request_number, query)` → (delay_s, status, body or None to hang)."""

    def __init__(self, script: Callable[[int, Dict[str, str]], Tuple[float, int, Optional[dict]]]) -> None:
        self.script = script
        self.requests: List[Tuple[float, str, Dict[str, str]]] = []  # (received at, path, query)
        self.reports: List[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urllib.parse.urlparse(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                with stub.lock:
                    n = len(stub.requests)
                    stub.requests.append((time.monotonic(), url.path, query))
                delay, status, body = stub.script(n, query)
                if body is None:
                    stub.release.wait(30)  # a frozen agent: never answers
                    return
                time.sleep(delay)
                self._send(status, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                stub.reports.append(json.loads(self.rfile.read(length)))
                self._send(200, {"ok": True, "instance_id": "stub"})

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on this request

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def assignment(version: int, ids: List[int], lease_ms: int = 5000) -> dict:
    return {
        "instance_id": "stub",
        "mode": "orchestrated",
        "epoch": 1,
        "version": version,
        "lease_ms": lease_ms,
        "leader": "stub",
        "streams": [{"id": i, "url": f"http://radio.example.invalid/{i}", "name": f"Radio {i}", "metadata": {"cidade": "Curitiba"}} for i in ids],
    }


class StubAgentTests(unittest.TestCase):
    def setUp(self) -> None:
        self.stub: Optional[StubAgent] = None
        self.client: Optional[SidecarClient] = None
        self.rec = Recorder()

    def tearDown(self) -> None:
        if self.client:
            self.client.stop(timeout=1)
        if self.stub:
            self.stub.close()

    def make(self, script: Callable[[int, Dict[str, str]], Tuple[float, int, Optional[dict]]], **kw: Any) -> SidecarClient:
        self.stub = StubAgent(script)
        kw.setdefault("wait_s", 1)
        kw.setdefault("request_margin_s", 3)
        self.client = SidecarClient(self.stub.url, self.rec.on_start, self.rec.on_stop, **kw)
        return self.client

    def test_lease_counts_from_the_moment_the_request_was_sent(self) -> None:
        # The answer takes 1 s to arrive and carries a 1.5 s lease; then the agent freezes.
        # Stopping must happen ~1.5 s after the request was sent, not 1.5 s after the answer.
        client = self.make(lambda n, q: (1.0, 200, assignment(7, [1, 2, 3], lease_ms=1500)) if n == 0 else (0, 200, None))
        client.start()
        wait_until(lambda: self.rec.ids() == {1, 2, 3}, 10, "the streams to start")
        wait_until(lambda: self.rec.ids() == set(), 10, "the lease to run out")
        sent = self.stub.requests[0][0]
        stopped = max(t for t, kind, _, _ in self.rec.events if kind == "stop")
        self.assertGreaterEqual(stopped - sent, 1.3)
        self.assertLess(stopped - sent, 2.3, "the lease was counted from the answer, not from the request")
        self.assertEqual({r for _, kind, _, r in self.rec.events if kind == "stop"}, {"lease expired"})

    def test_an_answer_that_arrives_after_its_lease_is_not_acted_on(self) -> None:
        client = self.make(lambda n, q: (1.0, 200, assignment(7, [1, 2], lease_ms=300)) if n == 0 else (0, 200, None))
        client.start()
        wait_until(lambda: client.version == 7, 10, "the late answer")
        self.assertEqual(self.rec.events, [])
        self.assertEqual(client.streams, {})

    def test_replaces_the_set_stops_first_and_acknowledges_only_after_applying(self) -> None:
        def script(n: int, q: Dict[str, str]) -> Tuple[float, int, Optional[dict]]:
            if n == 0:
                return 0, 200, assignment(1, [1, 2, 3])
            if n == 1:
                return 0.2, 200, assignment(2, [2, 3, 4])
            return 0.5, 200, assignment(2, [2, 3, 4])

        client = self.make(script)
        client.start()
        wait_until(lambda: len(self.stub.requests) >= 3, 10, "the third request")
        self.assertEqual(self.rec.ids(), {2, 3, 4})
        kinds = [(kind, sid) for _, kind, sid, _ in self.rec.events]
        self.assertEqual(kinds[:3], [("start", 1), ("start", 2), ("start", 3)])
        self.assertEqual(kinds[3:], [("stop", 1), ("start", 4)])
        self.assertEqual(self.rec.events[3][3], "revoked")
        # Long-polls carry the version applied; version 2 is claimed only after its callbacks ran.
        self.assertNotIn("version", self.stub.requests[0][2])
        self.assertEqual(self.stub.requests[1][2], {"version": "1", "wait": "1"})
        self.assertEqual(self.stub.requests[2][2]["version"], "2")
        self.assertLess(self.rec.events[-1][0], self.stub.requests[2][0])
        self.assertEqual(client.streams[4].metadata, {"cidade": "Curitiba"})

    def test_reconnects_with_growing_backoff(self) -> None:
        client = self.make(lambda n, q: (0, 503, {"error": "starting"}) if n < 4 else (0, 200, assignment(3, [9])), backoff_initial_s=0.1, backoff_max_s=2)
        client.start()
        wait_until(lambda: self.rec.ids() == {9}, 15, "the stream after reconnecting")
        times = [t for t, _, _ in self.stub.requests[:5]]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreater(gaps[2], gaps[0])  # 0.2-0.4 s after 0.05-0.1 s
        self.assertGreater(gaps[3], gaps[1])
        self.assertEqual(client.failures, 0)

    def test_report_posts_progress(self) -> None:
        client = self.make(lambda n, q: (0, 200, assignment(1, [5, 6])) if n == 0 else (0.5, 200, assignment(1, [5, 6])))
        client.start()
        wait_until(lambda: self.rec.ids() == {5, 6}, 10, "the streams")
        self.assertEqual(client.report(processed_count=12, error_count=1), {"ok": True, "instance_id": "stub"})
        self.assertEqual(self.stub.reports[-1], {"processed_count": 12, "error_count": 1, "streams": [{"id": 5, "status": "processing"}, {"id": 6, "status": "processing"}]})

    def test_stop_stops_every_stream(self) -> None:
        client = self.make(lambda n, q: (0, 200, assignment(1, [1, 2])) if n == 0 else (0, 200, None))
        client.start()
        wait_until(lambda: self.rec.ids() == {1, 2}, 10, "the streams")
        client.stop(timeout=1)
        self.assertEqual(self.rec.ids(), set())
        self.assertEqual({r for _, kind, _, r in self.rec.events if kind == "stop"}, {"shutdown"})


class ExampleTests(unittest.TestCase):
    def test_the_example_main_loop_starts_streams_and_stops_them_on_sigterm(self) -> None:
        stub = StubAgent(lambda n, q: (0, 200, assignment(1, [1, 2])) if n == 0 else (0.5, 200, assignment(1, [1, 2])))
        example = os.path.join(HERE, "example_fingerv7_main.py")
        proc = subprocess.Popen([sys.executable, example], env={**os.environ, "SIDECAR_URL": stub.url}, stderr=subprocess.PIPE, text=True)
        lines: List[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        try:
            wait_until(lambda: sum(" start " in l for l in lines) == 2, 15, "the example to start both streams")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(15), 0)
            reader.join(5)
            self.assertEqual(sum("(shutdown)" in l for l in lines), 2, "".join(lines))
        finally:
            if proc.poll() is None:
                proc.kill()
            stub.close()


# ---- against a real agent ---------------------------------------------------------------


class RealAgentTests(unittest.TestCase):
    """One agent process; the client beside it. Steps run in order in one test."""

    STREAMS = 8

    @classmethod
    def setUpClass(cls) -> None:
        cls.sandbox = AgentSandbox(
            "pyclient",
            "create table streams (id serial primary key, url text, name text, active boolean not null default true, cidade text);"
            f"insert into streams (url, name, cidade) select 'http://radio.example.invalid/s' || g, 'Stream ' || g, 'Curitiba' from generate_series(1, {cls.STREAMS}) g;",
        )
        cls.db_url = cls.sandbox.db_url
        port = free_port()
        cls.env = cls.sandbox.agent_env(f"py-{cls.sandbox.tag}", port)
        cls.url = f"http://127.0.0.1:{port}"
        cls.agent = cls.sandbox.start_agent(cls.env)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sandbox.close()

    def test_follows_a_real_agent(self) -> None:
        rec = Recorder()
        client = SidecarClient(self.url, rec.on_start, rec.on_stop, wait_s=5, request_margin_s=3, backoff_initial_s=0.1, backoff_max_s=1)
        client.start()
        try:
            all_ids = set(range(1, self.STREAMS + 1))
            with self.subTest("every stream starts"):
                wait_until(lambda: rec.ids() == all_ids, 30, f"all {self.STREAMS} streams (have {rec.ids()})")
                self.assertEqual(client.mode, "orchestrated")
                self.assertEqual(client.instance_id, self.env["INSTANCE_ID"])
                self.assertEqual(client.streams[1].metadata.get("cidade"), "Curitiba")
                self.assertGreater(client.lease_remaining(), 0)

            with self.subTest("reports reach the agent"):
                self.assertEqual(client.report(processed_count=40, error_count=2)["ok"], True)
                health = json.load(urllib.request.urlopen(self.url + "/health", timeout=5))
                self.assertEqual(health["worker"]["kind"], "v1")

            with self.subTest("catalog changes reach the worker"):
                psql(self.db_url, "update streams set active = false where id = 3")
                wait_until(lambda: 3 not in rec.ids(), 20, "stream 3 to stop")
                self.assertEqual([r for _, kind, sid, r in rec.events if kind == "stop" and sid == 3], ["revoked"])
                psql(self.db_url, "insert into streams (url, name) values ('http://radio.example.invalid/new', 'New')")
                wait_until(lambda: rec.ids() == (all_ids - {3}) | {self.STREAMS + 1}, 20, "the new stream to start")

            with self.subTest("a frozen agent: the lease runs out and every stream stops"):
                before = rec.ids()
                os.kill(self.agent.pid, signal.SIGSTOP)
                frozen_at = time.monotonic()
                try:
                    waited = wait_until(lambda: rec.ids() == set(), 10, "the lease to run out")
                    # WORKER_LEASE is 1.8 s, counted from the last request sent before the freeze.
                    self.assertLess(waited, 1.8 + 1.0)
                    self.assertTrue(all(r == "lease expired" for t, kind, _, r in rec.events if kind == "stop" and t >= frozen_at))
                finally:
                    os.kill(self.agent.pid, signal.SIGCONT)
                wait_until(lambda: rec.ids() == before, 30, "the streams to come back after the agent thawed")

            with self.subTest("the agent restarts: the client reconnects"):
                self.agent.send_signal(signal.SIGTERM)  # drains: the client is told to stop everything
                self.agent.wait(20)
                wait_until(lambda: rec.ids() == set(), 10, "the streams to stop while the agent is gone")
                wait_until(lambda: client.failures > 0, 10, "the client to notice the agent is gone")
                type(self).agent = self.sandbox.start_agent(self.env)
                wait_until(lambda: rec.ids() == before, 40, "the streams after the restart")
                self.assertEqual(client.failures, 0)
        finally:
            client.stop()
        self.assertEqual(rec.ids(), set())


if __name__ == "__main__":
    unittest.main()
