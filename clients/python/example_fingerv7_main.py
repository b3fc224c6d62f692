"""How a fingerv7 main loop uses the sidecar client (a sketch: capture is simulated).

    SIDECAR_URL=http://localhost:8001 python3 example_fingerv7_main.py

fingerv7 keeps doing what it does (capture ~15 s of audio, identify it, write music_log);
the only change is WHO decides which streams it processes: instead of
``int(index) % TOTAL_SERVERS == SERVER_ID - 1`` it starts and stops captures when the
sidecar says so, and tells it how each capture went (``report_stream``) and when the
recognition service pauses it (``report_rate_limited``), so the sidecar can move a stream
this worker cannot hear (geo-blocked, dead upstream) and give its streams to others while
it is paused. SIGTERM/SIGINT (docker stop, Ctrl-C) stops every capture, then exits.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import datetime, timedelta, timezone

from fingerv7_sidecar import SidecarClient, Stream

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("fingerv7")


class RateLimited(Exception):
    """The recognition service answered HTTP 429 with a Retry-After of `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited for {seconds} s")
        self.seconds = seconds


def capture_and_identify(stream: Stream) -> None:
    """Real code: capture ~15 s of audio, identify it, insert into music_log. Raises on failure."""


class Capture:
    """Stands in for fingerv7's per-stream capture thread."""

    def __init__(self, stream: Stream, counters: dict, client: SidecarClient) -> None:
        self.stream = stream
        self.counters = counters
        self.client = client
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"capture-{stream.id}", daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.halt.wait(15):  # one identification every ~15 s
            try:
                capture_and_identify(self.stream)
            except RateLimited as pause:
                # The whole worker is paused: the sidecar gives its streams to others meanwhile.
                self.client.report_rate_limited(datetime.now(timezone.utc) + timedelta(seconds=pause.seconds))
                self.halt.wait(pause.seconds)
                self.client.report_rate_limited(None)
                continue
            except Exception as err:  # 403, timeout, empty capture: this stream failed here
                self.counters["errors"] += 1
                self.client.report_stream(self.stream.id, ok=False, error=str(err) or type(err).__name__)
                continue
            self.counters["processed"] += 1
            self.client.report_stream(self.stream.id, ok=True)  # sent with the next report

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(timeout=5)  # must really be stopped before on_stop returns


def main() -> None:
    captures: dict = {}
    counters = {"processed": 0, "errors": 0}
    client: SidecarClient

    def on_start(stream: Stream) -> None:
        log.info("start %s %s (%s)", stream.id, stream.name, stream.url)
        captures[stream.id] = Capture(stream, counters, client)

    def on_stop(stream: Stream, reason: str) -> None:
        log.info("stop %s (%s)", stream.id, reason)
        capture = captures.pop(stream.id, None)
        if capture:
            capture.stop()

    client = SidecarClient(
        os.environ.get("SIDECAR_URL", "http://localhost:8001"),
        on_start=on_start,
        on_stop=on_stop,
        # Report every 30 s: the counters (shown in /instances and /metrics) and, per
        # stream, the outcomes recorded with report_stream since the last report.
        progress=lambda: {"processed_count": counters["processed"], "error_count": counters["errors"]},
        report_every_s=30,
    )

    def shutdown(signum, _frame) -> None:
        log.info("signal %s: stopping every capture", signum)
        # stop() joins the client's threads; do it off the signal handler's frame.
        threading.Thread(target=client.stop).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    client.run_forever()


if __name__ == "__main__":
    main()
