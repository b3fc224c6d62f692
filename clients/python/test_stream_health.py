"""Tests of the client's stream-health reports (run: python3 -m unittest discover -s clients/python).

* ``OutcomeBatchingTests``: the scripted stand-in agent of test_fingerv7_sidecar.py records
  what POST /v1/report carries: capture outcomes batched per stream ("ok" outweighs
  failures, "failed" carries the last error, "processing" when nothing was recorded), kept
  across a report that could not be delivered, and ``rate_limited_until`` (ISO-8601 UTC,
  then null once the pause is cleared).
* ``RealAgentHealthTests``: a REAL agent; a failure reported through the client shows in
  its GET /streams/:id (health "failing" on this worker, with the error), a success as "ok".
"""

from __future__ import annotations

import json
import os
import sys
import unittest
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "pyhelpers"))
from agent_harness import AgentSandbox, free_port, wait_until  # noqa: E402
from fingerv7_sidecar import SidecarClient  # noqa: E402
from test_fingerv7_sidecar import Recorder, StubAgent, assignment  # noqa: E402


class OutcomeBatchingTests(unittest.TestCase):
    def setUp(self) -> None:
        self.rec = Recorder()
        self.stub = StubAgent(lambda n, q: (0, 200, assignment(1, [5, 6, 7])) if n == 0 else (0.5, 200, assignment(1, [5, 6, 7])))
        self.client = SidecarClient(self.stub.url, self.rec.on_start, self.rec.on_stop, wait_s=1, request_margin_s=3)
        self.client.start()
        wait_until(lambda: self.rec.ids() == {5, 6, 7}, 10, "the streams")

    def tearDown(self) -> None:
        self.client.stop(timeout=1)
        self.stub.close()

    def last(self) -> dict:
        return self.stub.reports[-1]

    def test_outcomes_are_batched_into_the_next_report(self) -> None:
        c = self.client
        c.report_stream(5, ok=False, error="timeout")
        c.report_stream(5, ok=False, error="403\nForbidden")  # the last error wins
        c.report_stream(6, ok=False, error="empty capture")
        c.report_stream("6", ok=True)  # a success since the last report: "ok" (ids match as text)
        c.report_stream(6, ok=False, error="timeout")
        c.report(processed_count=3)
        self.assertEqual(self.last()["streams"], [{"id": 5, "status": "failed", "error": "403 Forbidden"}, {"id": 6, "status": "ok"}, {"id": 7, "status": "processing"}])
        self.assertNotIn("rate_limited_until", self.last())
        c.report()  # nothing new since: every stream is back to "processing"
        self.assertEqual([s["status"] for s in self.last()["streams"]], ["processing"] * 3)

    def test_a_failure_without_text_and_a_long_error_are_bounded(self) -> None:
        self.client.report_stream(7, ok=False)
        self.client.report_stream(5, ok=False, error="x" * 2000)
        self.client.report()
        by_id = {s["id"]: s for s in self.last()["streams"]}
        self.assertEqual(by_id[7], {"id": 7, "status": "failed", "error": "failed"})
        self.assertEqual(len(by_id[5]["error"]), 500)

    def test_outcomes_survive_a_report_that_was_not_delivered(self) -> None:
        self.client.report_stream(5, ok=False, error="403")
        good = self.client.base_url
        self.client.base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        with self.assertRaises(Exception):
            self.client.report()
        self.client.base_url = good
        self.client.report()
        self.assertEqual(self.last()["streams"][0], {"id": 5, "status": "failed", "error": "403"})

    def test_rate_limited_until_is_sent_while_the_pause_lasts_then_cleared_once(self) -> None:
        until = datetime(2099, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=-3)))
        self.client.report_rate_limited(until)
        self.client.report()
        self.assertEqual(self.last()["rate_limited_until"], "2099-01-02T06:04:05.678Z")
        self.client.report()
        self.assertEqual(self.last()["rate_limited_until"], "2099-01-02T06:04:05.678Z", "repeated while the pause lasts")
        self.client.report_rate_limited(None)
        self.client.report()
        self.assertIsNone(self.last()["rate_limited_until"])
        self.client.report()
        self.assertNotIn("rate_limited_until", self.last(), "a cleared pause is sent once")
        past = datetime.now(timezone.utc) - timedelta(seconds=5)
        self.client.report_rate_limited(past)
        self.client.report()
        self.assertIn("rate_limited_until", self.last(), "a new value is always sent once")
        self.client.report()
        self.assertNotIn("rate_limited_until", self.last(), "a pause in the past is not repeated")

    def test_bad_input_is_a_clear_error(self) -> None:
        for args in [(5, "yes"), (5, 1), (None, True), (True, True)]:
            with self.assertRaises(TypeError):
                self.client.report_stream(*args)
        with self.assertRaisesRegex(TypeError, "report_stream: error must be a string"):
            self.client.report_stream(5, False, error=403)  # type: ignore[arg-type]
        with self.assertRaisesRegex(TypeError, "until must be a datetime or None"):
            self.client.report_rate_limited("2099-01-01T00:00:00Z")  # type: ignore[arg-type]
        self.client.report()
        self.assertEqual([s["status"] for s in self.last()["streams"]], ["processing"] * 3)


class RealAgentHealthTests(unittest.TestCase):
    STREAMS = 4

    @classmethod
    def setUpClass(cls) -> None:
        cls.sandbox = AgentSandbox(
            "pyhealth",
            "create table streams (id serial primary key, url text, name text, active boolean not null default true);"
            f"insert into streams (url, name) select 'http://radio.example.invalid/s' || g, 'Stream ' || g from generate_series(1, {cls.STREAMS}) g;",
        )
        port = free_port()
        # One worker only: a failing stream has nowhere to go, so it stays and is shown failing.
        cls.env = cls.sandbox.agent_env(f"pyh-{cls.sandbox.tag}", port, STREAM_FAILOVER_AFTER="600")
        cls.url = f"http://127.0.0.1:{port}"
        cls.agent = cls.sandbox.start_agent(cls.env)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sandbox.close()

    def stream(self, sid: int) -> Optional[dict]:
        try:
            return json.load(urllib.request.urlopen(f"{self.url}/streams/{sid}", timeout=5))
        except Exception:
            return None

    def test_a_failure_reported_through_the_client_shows_in_the_stream_view(self) -> None:
        rec = Recorder()
        client = SidecarClient(self.url, rec.on_start, rec.on_stop, wait_s=5, request_margin_s=3)
        client.start()
        try:
            wait_until(lambda: rec.ids() == set(range(1, self.STREAMS + 1)), 30, "every stream")
            client.report_stream(2, ok=False, error="403 geo-blocked")
            for sid in (1, 3, 4):
                client.report_stream(sid, ok=True)
            self.assertTrue(client.report()["ok"])
            seen: Any = None

            def failing() -> bool:
                nonlocal seen
                seen = self.stream(2)
                return bool(seen) and seen.get("health") == "failing"

            wait_until(failing, 20, "stream 2 to be failing")
            self.assertEqual(seen["last_error"], "403 geo-blocked")
            self.assertEqual(seen["owner"], self.env["INSTANCE_ID"])
            self.assertIsNotNone(seen["failing_since"])
            wait_until(lambda: (self.stream(1) or {}).get("health") == "ok", 20, "stream 1 to be ok")
        finally:
            client.stop()


if __name__ == "__main__":
    unittest.main()
