"""How a fingerv7 main loop uses the sidecar client (a sketch: capture is simulated).

    SIDECAR_URL=http://localhost:8001 python3 example_fingerv7_main.py

fingerv7 keeps doing what it does (capture ~15 s of audio, identify it, write music_log);
the only change is WHO decides which streams it processes: instead of
``int(index) % TOTAL_SERVERS == SERVER_ID - 1`` it starts and stops captures when the
sidecar says so. SIGTERM/SIGINT (docker stop, Ctrl-C) stops every capture, then exits.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from fingerv7_sidecar import SidecarClient, Stream

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("fingerv7")


class Capture:
    """Stands in for fingerv7's per-stream capture thread."""

    def __init__(self, stream: Stream, counters: dict) -> None:
        self.stream = stream
        self.counters = counters
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"capture-{stream.id}", daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.halt.wait(15):  # one identification every ~15 s
            self.counters["processed"] += 1  # real code: capture, identify, insert into music_log

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(timeout=5)  # must really be stopped before on_stop returns


def main() -> None:
    captures: dict = {}
    counters = {"processed": 0, "errors": 0}

    def on_start(stream: Stream) -> None:
        log.info("start %s %s (%s)", stream.id, stream.name, stream.url)
        captures[stream.id] = Capture(stream, counters)

    def on_stop(stream: Stream, reason: str) -> None:
        log.info("stop %s (%s)", stream.id, reason)
        capture = captures.pop(stream.id, None)
        if capture:
            capture.stop()

    client = SidecarClient(
        os.environ.get("SIDECAR_URL", "http://localhost:8001"),
        on_start=on_start,
        on_stop=on_stop,
        # Report every 30 s; the sidecar shows these numbers in /instances and /metrics.
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
