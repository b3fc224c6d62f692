"""Drives real sidecar agents with the older orchestrator API, the way today's fingerv7 build does.

Run: python3 -m unittest discover -s test/legacy-client -v

Two agent processes (node + tsx, agent/main.ts) on a throwaway PostgreSQL database whose
catalog is the production table (``index`` as the id) and a private Redis key prefix.
Each gets one worker written to the exact calls in fingerv7_orchestrator_client.py, polling
in its own thread and processing exactly what its last assign returned. Checked: register,
heartbeat, assign, update, release, a rebalance (an agent joining, and POST /rebalance)
showing up in the next assign, and that two workers are never told to process one stream.

Needs node, psql and running PostgreSQL and Redis (TEST_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/postgres; TEST_REDIS_URL, default redis://127.0.0.1:6379).
A missing service is an error, never a skip.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import unittest
import urllib.request
from typing import Any, Callable, Dict, List, Set

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "pyhelpers"))
from agent_harness import AgentSandbox, free_port, wait_until  # noqa: E402
from fingerv7_orchestrator_client import OrchestratorClient, OrchestratorError  # noqa: E402

STREAMS = 12
TOKEN = "change-me-legacy-client-token"


class Fleet:
    """What every worker was last told, checked for overlap on every change."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sets: Dict[str, Set[Any]] = {}
        self.violations: List[str] = []

    def told(self, who: str, ids: Set[Any]) -> None:
        with self.lock:
            self.sets[who] = set(ids)
            for other, theirs in self.sets.items():
                both = theirs & ids if other != who else set()
                if both:
                    self.violations.append(f"{who} and {other} both told to process {sorted(both, key=str)}")

    def get(self, who: str) -> Set[Any]:
        with self.lock:
            return set(self.sets.get(who, set()))


class Worker(threading.Thread):
    """A fingerv7 worker of today's build: heartbeats, polls assign, processes exactly that set.

    Calls that must not race with its poll (release) run in its own thread, between polls,
    as the real worker does them from its loop.
    """

    def __init__(self, client: OrchestratorClient, fleet: Fleet, poll: float = 0.3) -> None:
        super().__init__(daemon=True, name=f"worker-{client.instance_id}")
        self.client = client
        self.fleet = fleet
        self.poll = poll
        self.stopping = threading.Event()
        self.jobs: "queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]]" = queue.Queue()
        self.assigns = 0
        self.errors: List[str] = []

    @property
    def ids(self) -> Set[Any]:
        return self.fleet.get(self.client.instance_id)

    def run(self) -> None:
        last_beat = 0.0
        while not self.stopping.is_set():
            while not self.jobs.empty():
                fn, out = self.jobs.get()
                try:
                    out.put(("ok", fn()))
                except Exception as err:  # handed back to the caller
                    out.put(("err", err))
            try:
                if time.monotonic() - last_beat > 1.0:
                    last_beat = time.monotonic()
                    self.client.heartbeat(current_load=len(self.ids))
                self.fetch()
            except (OSError, OrchestratorError) as err:
                self.errors.append(str(err))  # keeps processing what it has
            self.stopping.wait(self.poll)

    def fetch(self) -> Dict[str, Any]:
        """One assign call; the worker then processes exactly the returned set."""
        answer = self.client.assign()
        self.assigns += 1
        self.fleet.told(self.client.instance_id, set(answer.get("assigned_streams", [])))
        return answer

    def call(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        out: "queue.Queue[Any]" = queue.Queue()
        self.jobs.put((fn, out))
        kind, value = out.get(timeout=timeout)
        if kind == "err":
            raise value
        return value

    def release(self, ids: List[Any]) -> Dict[str, Any]:
        def go() -> Dict[str, Any]:
            self.fleet.told(self.client.instance_id, self.ids - set(ids))  # stops processing them, then says so
            return self.client.release(ids)

        return self.call(go)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


class OlderWorkerApiTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.sandbox = AgentSandbox(
            "legacyclient",
            "create table streams (url text, name text, sheet text, cidade text, estado text, regiao text, segmento text, index integer);"
            "insert into streams (url, name, sheet, cidade, estado, regiao, segmento, index) "
            f"select 'http://radio.example.invalid/s' || g, 'Radio ' || g, 'Radios', 'Curitiba', 'PR', 'Sul', 'Popular', g from generate_series(1, {STREAMS}) g;",
        )

    @classmethod
    def start_agent(cls, name: str) -> str:
        port = free_port()
        cls.sandbox.start_agent(cls.sandbox.agent_env(name, port, STREAMS_ID_COLUMN="index", ADMIN_TOKEN=TOKEN, REBALANCE_COOLDOWN="300"))
        return f"http://127.0.0.1:{port}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sandbox.close()

    def admin(self, url: str, method: str, path: str) -> int:
        req = urllib.request.Request(url + path, data=b"" if method == "POST" else None, method=method, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status

    def test_a_worker_of_todays_build_works_against_the_sidecar_unchanged(self) -> None:
        everything = set(range(1, STREAMS + 1))
        fleet = Fleet()
        url_a = self.start_agent("sidecar-a")
        a = OrchestratorClient(url_a, "fingerv7-a", capacity=20)

        # register / heartbeat
        reg = a.register(ip="10.0.0.1", port=8080)
        self.assertEqual(reg["success"], True)
        self.assertEqual(reg["worker_id"], "fingerv7-a")
        self.assertIn("message", reg)
        self.assertEqual(a.heartbeat(current_load=0), {"success": True, "message": "Heartbeat received"})

        # assign: the whole assignment, every stream with the catalog's columns
        wa = Worker(a, fleet)
        wa.start()
        wait_until(lambda: wa.ids == everything, 40, "the first worker to get every stream")
        answer = wa.call(wa.fetch)  # as the worker itself: an assign call is also its acknowledgement
        self.assertEqual(answer["status"], "assigned")
        self.assertEqual(answer["assigned_streams"], sorted(everything))
        self.assertEqual(answer["total"], STREAMS)
        self.assertEqual(answer["worker_id"], "fingerv7-a")
        first = answer["streams"][0]
        self.assertEqual(set(first), {"stream_id", "id", "url", "stream_url", "name", "metadata"})
        self.assertEqual((first["stream_id"], first["id"], first["url"], first["stream_url"], first["name"]), ("1", 1, "http://radio.example.invalid/s1", "http://radio.example.invalid/s1", "Radio 1"))
        self.assertEqual(first["metadata"], {"sheet": "Radios", "cidade": "Curitiba", "estado": "PR", "regiao": "Sul", "segmento": "Popular"})

        # update
        for status in ("processing", "completed", "failed"):
            done = a.update(1, status, result={"error": "no match"} if status == "failed" else {"songs": 1})
            self.assertEqual(done, {"success": True, "message": f"Stream 1 status updated to {status}"})
        with self.assertRaises(OrchestratorError) as bad:
            a.update(1, "finished")
        self.assertEqual(bad.exception.status, 400)
        self.assertIn("status must be one of", bad.exception.message)
        with self.assertRaises(OrchestratorError) as missing:
            a.request("POST", "/api/workers/register", {"worker_type": "fingerv7", "capacity": 5})
        self.assertEqual((missing.exception.status, missing.exception.message), (400, "instance_id is required"))

        # a rebalance: a second instance joins; the first worker's next assigns give streams up
        url_b = self.start_agent("sidecar-b")
        b = OrchestratorClient(url_b, "fingerv7-b", capacity=20)
        self.assertTrue(b.register()["success"])
        wb = Worker(b, fleet)
        wb.start()
        t = wait_until(lambda: wa.ids | wb.ids == everything and len(wa.ids) == len(wb.ids) == STREAMS // 2, 40, "the join rebalance to reach both workers")
        print(f"\n[legacy-client] join rebalance visible in both workers' assign answers after {t:.2f} s", file=sys.stderr)

        # release: the streams leave at once and go to the other worker
        given = sorted(wa.ids, key=str)[:3]
        rel = wa.release(given)
        self.assertEqual(rel["status"], "released")
        self.assertEqual(sorted(rel["released_streams"], key=str), given)
        self.assertTrue(set(given).isdisjoint(wa.call(wa.fetch)["assigned_streams"]))
        t = wait_until(lambda: set(given) <= wb.ids, 20, "the released streams to reach the other worker")
        print(f"[legacy-client] released streams in the other worker's assign after {t:.2f} s", file=sys.stderr)
        # Within the cooldown nothing moves them back by itself...
        time.sleep(2.0)
        self.assertEqual((len(wa.ids), len(wb.ids)), (STREAMS // 2 - 3, STREAMS // 2 + 3))
        # ...until an operator asks: POST /rebalance shows up in the next assigns.
        self.assertEqual(self.admin(url_a, "POST", "/rebalance"), 202)
        t = wait_until(lambda: len(wa.ids) == len(wb.ids) == STREAMS // 2 and wa.ids | wb.ids == everything, 30, "POST /rebalance to show up in the assigns")
        print(f"[legacy-client] POST /rebalance visible in both workers' assign answers after {t:.2f} s", file=sys.stderr)
        changes = a.request("GET", "/streams/status", query={"limit": 50})["recent_changes"]
        manual = [c for c in changes if c["kind"] == "assign" and c["reason"] == "manual"]
        self.assertEqual([(c["from"], c["to"]) for c in manual], [("sidecar-b", "sidecar-a")] * 3)

        # the list of workers a sidecar serves
        listed = a.workers()
        self.assertEqual(listed["total"], 1)
        self.assertEqual(listed["workers"][0]["instance_id"], "fingerv7-a")
        self.assertEqual(listed["workers"][0]["capacity"], 20)
        self.assertEqual(set(listed["workers"][0]), {"instance_id", "worker_type", "status", "capacity", "current_load", "available_capacity", "last_heartbeat", "registered_at"})
        # a second worker on the same sidecar is refused while the first is alive
        with self.assertRaises(OrchestratorError) as dup:
            OrchestratorClient(url_a, "fingerv7-intruder", capacity=5).register()
        self.assertEqual(dup.exception.status, 409)

        # shutdown of the second worker: it releases everything; the first gets it all at once
        wb.stop()
        mine = sorted(wb.ids, key=str)
        fleet.told("fingerv7-b", set())  # it stops processing, then releases
        self.assertEqual(sorted(b.release(mine)["released_streams"], key=str), mine)
        wait_until(lambda: wa.ids == everything, 20, "the first worker to take over the released streams")
        self.assertEqual(wb.fetch()["status"], "no_streams")

        wa.stop()
        self.assertEqual(fleet.violations, [])
        self.assertGreater(wa.assigns, 10)


if __name__ == "__main__":
    unittest.main()
