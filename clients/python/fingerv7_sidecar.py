"""fingerv7_sidecar: the fingerv7 side of the coordination sidecar (standard library only).

Drop this file next to fingerv7 and let it decide which streams the worker processes:

    from fingerv7_sidecar import SidecarClient

    client = SidecarClient("http://localhost:8001", on_start=start_capture, on_stop=stop_capture)
    client.start()          # background threads: long-poll, lease watchdog, optional reports
    ...
    client.report_stream(stream_id, ok=False, error="403")   # after each capture
    client.report_rate_limited(until)                         # on a 429 pause (None: resumed)
    client.report(processed_count=n, error_count=e)
    ...
    client.stop()           # stops every stream, then returns

The rules it follows (the worker half of the sidecar's safety model):

* It long-polls ``GET /v1/assignment?version=V&wait=S`` and replaces what the worker
  processes with exactly the returned set: ``on_stop`` for streams that left it, then
  ``on_start`` for streams that joined it. Only once both are done does it ask with the
  new version, because asking with ``version=V`` tells the agent "I have applied V".
* Every answer carries ``lease_ms``. The lease is counted from the moment the request was
  SENT, not from when the answer arrived. When it runs out without a newer answer (the
  agent is frozen, gone or cut off), every stream is stopped at once; they start again
  only from a fresh answer. This is what lets the cluster hand the streams to another
  worker safely: the agent's peers wait longer than the lease before they do.
* Progress goes to ``POST /v1/report``; call :meth:`SidecarClient.report`, or pass
  ``progress`` and ``report_every_s`` to report periodically.
* Stream health: after each capture call :meth:`SidecarClient.report_stream` with its
  outcome; the outcomes are batched into the next report (a stream with at least one
  success since the last report is "ok", one with only failures is "failed" with the last
  error, one with neither is "processing"). The agent moves a stream that keeps failing on
  this worker to another one. When the recognition service pauses the worker (HTTP 429),
  call :meth:`SidecarClient.report_rate_limited` with the end of the pause (and ``None``
  when it is over): the agent gives the worker's streams to others meanwhile.
* Connection errors are retried with exponential backoff and jitter (``backoff_initial_s``
  doubling up to ``backoff_max_s``); the lease keeps running meanwhile.

Callbacks run on the client's threads, one at a time (never concurrently). They must be
quick (start or stop a capture thread or process and return) and must not raise: an
exception is logged and the stream is considered started / stopped anyway. ``on_stop``
must really stop the stream before it returns: another worker may start it next.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

__all__ = ["SidecarClient", "Stream", "SidecarError"]
__version__ = "1.0.0"

StreamId = Union[int, str]
MAX_ERROR_CHARS = 500  # a worker's error text is free-form; the agent needs a short one
log = logging.getLogger("fingerv7_sidecar")


class SidecarError(Exception):
    """The agent answered with something this client cannot use."""


@dataclass(frozen=True)
class Stream:
    """One stream the worker must process: the catalog row as the agent sent it."""

    id: StreamId
    url: str
    name: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


class SidecarClient:
    """Follows the assignment of the sidecar agent beside this worker.

    Parameters (durations in seconds):
      base_url           the agent, normally http://localhost:8001 (its PORT).
      on_start(stream)   called when a stream joins the worker's set.
      on_stop(stream, reason)  called when a stream leaves it; reason is "revoked",
                         "changed", "lease expired" or "shutdown".
      wait_s             long-poll wait asked of the agent (it answers sooner when the
                         assignment changes, and never later than a third of the lease).
      request_margin_s   extra time allowed for an answer beyond wait_s before retrying.
      backoff_initial_s, backoff_max_s  reconnect backoff bounds.
      progress           optional callable returning report fields (processed_count,
                         error_count, streams) for periodic reports.
      report_every_s     how often to call progress and POST /v1/report (None: never).
      clock              monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8001",
        on_start: Optional[Callable[[Stream], None]] = None,
        on_stop: Optional[Callable[[Stream, str], None]] = None,
        *,
        wait_s: float = 20.0,
        request_margin_s: float = 5.0,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        progress: Optional[Callable[[], Mapping[str, Any]]] = None,
        report_every_s: Optional[float] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if wait_s <= 0 or request_margin_s <= 0 or backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError("wait_s > 0, request_margin_s > 0 and 0 < backoff_initial_s <= backoff_max_s are required")
        self.base_url = base_url.rstrip("/")
        self._on_start = on_start or (lambda stream: None)
        self._on_stop = on_stop or (lambda stream, reason: None)
        self.wait_s = wait_s
        self.request_margin_s = request_margin_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._progress = progress
        self._report_every_s = report_every_s
        self._clock = clock

        self._lock = threading.RLock()  # guards the view and serialises the callbacks
        self._changed = threading.Condition(self._lock)
        self._view: Dict[StreamId, Stream] = {}
        self._deadline = 0.0  # monotonic time at which the lease runs out
        self._version: Optional[int] = None
        self._stopping = threading.Event()
        self._threads: List[threading.Thread] = []

        self.instance_id: Optional[str] = None
        self.mode: Optional[str] = None
        self.leader: Optional[str] = None
        self.epoch: Optional[int] = None
        self.last_error: Optional[str] = None
        self.failures = 0  # consecutive failed requests

        # Capture outcomes since the last report: str(id) -> (ok, last error).
        self._outcomes: Dict[str, Tuple[bool, Optional[str]]] = {}
        self._rate_limited_until: Optional[datetime] = None
        self._rate_limit_seq = 0  # bumped on every report_rate_limited(); 0: never called
        self._rate_limit_sent = 0

    # ---- the local view -----------------------------------------------------------

    @property
    def streams(self) -> Dict[StreamId, Stream]:
        """What the worker must be processing now (a copy)."""
        with self._lock:
            return dict(self._view)

    @property
    def version(self) -> Optional[int]:
        """The last assignment version applied."""
        return self._version

    def lease_remaining(self) -> float:
        """Seconds left on the lease (0 when it has run out)."""
        return max(0.0, self._deadline - self._clock())

    # ---- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        """Starts the background threads; returns at once."""
        if self._threads:
            return
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._poll_loop, name="sidecar-poll", daemon=True),
            threading.Thread(target=self._watchdog, name="sidecar-lease", daemon=True),
        ]
        if self._progress is not None and self._report_every_s:
            self._threads.append(threading.Thread(target=self._report_loop, name="sidecar-report", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops every stream (reason "shutdown") and the threads. Idempotent."""
        self._stopping.set()
        with self._lock:
            self._apply({}, "shutdown")
            self._deadline = 0.0
            self._changed.notify_all()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        self._threads = []

    def run_forever(self) -> None:
        """start() and block until stop() is called from another thread or a signal handler."""
        self.start()
        while not self._stopping.wait(1.0):
            pass
        self.stop()  # idempotent: makes sure every stream is stopped before returning

    # ---- one request --------------------------------------------------------------

    def poll_once(self) -> bool:
        """One GET /v1/assignment (a long-poll once a version is known), applied to the view.

        Returns True when an answer was applied; raises on a connection or protocol error.
        """
        query = ""
        if self._version is not None:
            query = "?" + urllib.parse.urlencode({"version": self._version, "wait": self.wait_s})
        sent_at = self._clock()
        body = self._request("GET", "/v1/assignment" + query, timeout=self.wait_s + self.request_margin_s)
        try:
            version = int(body["version"])
            lease_ms = float(body["lease_ms"])
            rows = body["streams"]
            streams = {s["id"]: Stream(s["id"], str(s["url"]), str(s.get("name") or s["id"]), s.get("metadata") or {}) for s in rows}
        except (KeyError, TypeError, ValueError) as err:
            raise SidecarError(f"unexpected assignment answer: {err!r}") from err
        with self._lock:
            if self._stopping.is_set():
                return False
            deadline = sent_at + lease_ms / 1000.0
            self.instance_id = body.get("instance_id")
            self.mode = body.get("mode")
            self.leader = body.get("leader")
            self.epoch = body.get("epoch")
            if deadline <= self._clock():
                # The answer came too late to act on: its lease has already run out.
                self._apply({}, "lease expired")
            else:
                self._deadline = deadline
                self._apply(streams if lease_ms > 0 else {}, "revoked")
            self._version = version
            self._changed.notify_all()
        return True

    def report_stream(self, stream_id: StreamId, ok: bool, error: Optional[str] = None) -> None:
        """Records one capture's outcome for ``stream_id``; sent with the next report.

        ``ok`` is True when the capture produced audio (whether or not a song was
        identified), False when it failed; ``error`` says why, in a few words ("403",
        "timeout", "empty capture"). A success since the last report outweighs failures.
        """
        if not isinstance(ok, bool):
            raise TypeError(f"report_stream: ok must be True or False, not {ok!r}")
        if error is not None and not isinstance(error, str):
            raise TypeError(f"report_stream: error must be a string or None, not {type(error).__name__}")
        if not isinstance(stream_id, (int, str)) or isinstance(stream_id, bool):
            raise TypeError(f"report_stream: stream_id must be an int or a str, not {stream_id!r}")
        text = None if ok else " ".join((error or "failed").split())[:MAX_ERROR_CHARS] or "failed"
        with self._lock:
            prev = self._outcomes.get(str(stream_id))  # 12 and "12" are the same stream
            if ok or prev is None or not prev[0]:  # a success since the last report stays "ok"
                self._outcomes[str(stream_id)] = (ok, text)

    def report_rate_limited(self, until: Optional[datetime]) -> None:
        """The recognition service paused this worker until ``until`` (None: not paused).

        Sent as ``rate_limited_until`` with the next report (and every report while the
        pause lasts). A naive datetime is taken as local time.
        """
        if until is not None and not isinstance(until, datetime):
            raise TypeError(f"report_rate_limited: until must be a datetime or None, not {type(until).__name__}")
        with self._lock:
            self._rate_limited_until = until
            self._rate_limit_seq += 1

    def report(
        self,
        processed_count: Optional[int] = None,
        error_count: Optional[int] = None,
        streams: Optional[List[Mapping[str, Any]]] = None,
    ) -> Dict[str, Any]:
        """POST /v1/report.

        ``streams`` defaults to every stream of the view with its outcome since the last
        report ("ok", "failed" with the error, or "processing"); outcomes that could not
        be delivered go with the next report.
        """
        with self._lock:
            outcomes: Dict[str, Tuple[bool, Optional[str]]] = {}
            if streams is None:  # these outcomes go now; recorded ones keep for the next report
                outcomes, self._outcomes = self._outcomes, {}
                streams = [self._stream_entry(sid, outcomes.get(str(sid))) for sid in self._view]
            rl_seq, rl_until = self._rate_limit_seq, self._rate_limited_until
        body: Dict[str, Any] = {"streams": list(streams)}
        if processed_count is not None:
            body["processed_count"] = int(processed_count)
        if error_count is not None:
            body["error_count"] = int(error_count)
        if rl_seq != self._rate_limit_sent or (rl_until is not None and _utc(rl_until) > datetime.now(timezone.utc)):
            body["rate_limited_until"] = None if rl_until is None else _iso(rl_until)
        try:
            answer = self._request("POST", "/v1/report", body=body, timeout=self.request_margin_s)
        except Exception:
            with self._lock:  # not delivered: merge back under what was recorded meanwhile
                for sid, outcome in outcomes.items():
                    current = self._outcomes.get(sid)
                    if current is None or (outcome[0] and not current[0]):
                        self._outcomes[sid] = outcome
            raise
        with self._lock:
            self._rate_limit_sent = max(self._rate_limit_sent, rl_seq)
        return answer

    @staticmethod
    def _stream_entry(sid: StreamId, outcome: Optional[Tuple[bool, Optional[str]]]) -> Dict[str, Any]:
        if outcome is None:
            return {"id": sid, "status": "processing"}
        if outcome[0]:
            return {"id": sid, "status": "ok"}
        return {"id": sid, "status": "failed", "error": outcome[1]}

    # ---- internals ----------------------------------------------------------------

    def _apply(self, target: Mapping[StreamId, Stream], reason: str) -> None:
        """Makes the view equal to `target`: stops first, then starts. Caller holds the lock."""
        for sid, old in list(self._view.items()):
            new = target.get(sid)
            if new is None or new.url != old.url:
                del self._view[sid]
                self._call(self._on_stop, old, reason if new is None else "changed")
        for sid, new in target.items():
            if sid not in self._view:
                self._view[sid] = new
                self._call(self._on_start, new)
            else:
                self._view[sid] = new  # same stream, possibly new name or metadata

    @staticmethod
    def _call(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a worker bug must not stop the lease logic
            log.exception("callback %s failed for stream %r", getattr(fn, "__name__", fn), args[0].id)

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
                if self.failures:
                    log.info("agent at %s reachable again", self.base_url)
                self.failures = 0
                self.last_error = None
            except Exception as err:  # any failure: back off and retry; the lease keeps running
                if self._stopping.is_set():
                    return
                self.failures += 1
                self.last_error = str(err)
                delay = min(self.backoff_max_s, self.backoff_initial_s * (2 ** min(self.failures - 1, 30)))
                delay *= random.uniform(0.5, 1.0)
                if self.failures == 1:
                    log.warning("cannot reach the agent at %s (%s); retrying with backoff", self.base_url, err)
                self._stopping.wait(delay)

    def _watchdog(self) -> None:
        """Stops every stream the moment the lease runs out without renewal."""
        with self._lock:
            while not self._stopping.is_set():
                left = self._deadline - self._clock()
                if left <= 0:
                    if self._view:
                        log.warning("lease ran out without renewal: stopping %d stream(s)", len(self._view))
                        self._apply({}, "lease expired")
                    self._changed.wait(0.5)
                else:
                    self._changed.wait(min(left, 0.5))

    def _report_loop(self) -> None:
        assert self._progress is not None and self._report_every_s
        while not self._stopping.wait(self._report_every_s):
            try:
                fields = dict(self._progress())
                self.report(fields.get("processed_count"), fields.get("error_count"), fields.get("streams"))
            except Exception as err:  # reports are best effort
                log.debug("report failed: %s", err)

    def _request(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None, timeout: float = 10.0) -> Dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                payload = res.read()
        except urllib.error.HTTPError as err:
            detail = err.read()[:300].decode("utf-8", "replace")
            raise SidecarError(f"{method} {path}: HTTP {err.code} {detail}") from err
        try:
            parsed = json.loads(payload)
        except ValueError as err:
            raise SidecarError(f"{method} {path}: answer is not JSON") from err
        if not isinstance(parsed, dict):
            raise SidecarError(f"{method} {path}: answer is not a JSON object")
        return parsed


def _utc(when: datetime) -> datetime:
    return when.astimezone(timezone.utc)  # a naive datetime is local time


def _iso(when: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a Z, as the agent's timestamps are."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%S.") + f"{_utc(when).microsecond // 1000:03d}Z"
