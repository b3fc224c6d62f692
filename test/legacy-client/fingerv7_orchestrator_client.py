"""A small client for the orchestrator API that today's fingerv7 build speaks (stdlib only).

It makes exactly the calls that build makes against ``ORCHESTRATOR_URL``, so pointing it at
a sidecar (``http://localhost:8001``) checks that the sidecar is a drop-in:

* ``POST /api/workers/register``  {instance_id, worker_type, capacity, ip, port, status, metadata}
* ``POST /api/heartbeat``         {worker_instance_id, status, current_load, available_capacity, timestamp, metrics}
* ``GET  /api/streams/assign``    ?worker_id=&capacity=&worker_type=
* ``POST /streams/release``       {server_id, stream_ids}
* ``POST /api/streams/update``    {stream_id, worker_instance_id, status, result}
* ``GET  /api/workers``

A worker of this kind processes exactly the set its last ``assign()`` returned, polls it
regularly (more often than the sidecar's WORKER_TIMEOUT) and releases its streams when it
shuts down. See docs/legacy-workers.md.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterable, List, Optional, Union

StreamId = Union[int, str]


class OrchestratorError(Exception):
    """An answer other than 2xx: ``status`` is the HTTP status, ``message`` the server's explanation."""

    def __init__(self, status: int, message: str, body: Any) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body


class OrchestratorClient:
    def __init__(self, base_url: str, instance_id: str, capacity: int, worker_type: str = "fingerv7", timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.instance_id = instance_id
        self.capacity = capacity
        self.worker_type = worker_type
        self.timeout = timeout

    # ---- transport ---------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None, raw: Optional[bytes] = None) -> Dict[str, Any]:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:
                return json.loads(res.read().decode() or "{}")
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            message = parsed.get("message") or parsed.get("detail") if isinstance(parsed, dict) else str(parsed)
            raise OrchestratorError(err.code, str(message), parsed) from None

    # ---- the calls ---------------------------------------------------------------

    def register(self, ip: Optional[str] = None, port: Optional[int] = None, status: str = "active", metadata: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        body = {
            "instance_id": self.instance_id,
            "worker_type": self.worker_type,
            "capacity": self.capacity,
            "ip": ip,
            "port": port,
            "status": status,
            "metadata": metadata if metadata is not None else {"version": "7", "capabilities": ["audio_fingerprinting"]},
        }
        return self.request("POST", "/api/workers/register", body)

    def heartbeat(self, current_load: int, status: str = "active", metrics: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        body = {
            "worker_instance_id": self.instance_id,
            "status": status,
            "current_load": current_load,
            "available_capacity": max(0, self.capacity - current_load),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metrics": metrics if metrics is not None else {"system": {"cpu_percent": 10.0, "memory_percent": 30.0}, "worker": {}},
        }
        return self.request("POST", "/api/heartbeat", body)

    def assign(self) -> Dict[str, Any]:
        return self.request("GET", "/api/streams/assign", query={"worker_id": self.instance_id, "capacity": self.capacity, "worker_type": self.worker_type})

    def assigned_ids(self) -> List[StreamId]:
        """The whole set to process now (what the worker replaces its set with)."""
        return list(self.assign().get("assigned_streams", []))

    def release(self, stream_ids: Iterable[StreamId]) -> Dict[str, Any]:
        return self.request("POST", "/streams/release", {"server_id": self.instance_id, "stream_ids": list(stream_ids)})

    def update(self, stream_id: StreamId, status: str, result: Any = None) -> Dict[str, Any]:
        body: Dict[str, Any] = {"stream_id": stream_id, "worker_instance_id": self.instance_id, "status": status}
        if result is not None:
            body["result"] = result
        return self.request("POST", "/api/streams/update", body)

    def workers(self) -> Dict[str, Any]:
        return self.request("GET", "/api/workers")
