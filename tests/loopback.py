"""A scripted HTTP server on 127.0.0.1 (port 0) in a thread, for the HTTP sink tests.

Each POST takes the next answer from the script (200 "ok" once it runs out): a status
with headers and body, or ``HANG`` (no reply until the server stops, so the client must
time out). Requests are recorded; tests wait on them with ``wait_requests``, never sleep.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"


HANG = Answer(status=0)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, so that server_close() joins them: no thread leaks.
    daemon_threads = False
    block_on_close = True

    def __init__(self, owner: LoopbackServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left: expected, and not worth a traceback


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer = self.server.owner.record(Received(self.path, dict(self.headers), body))
        if answer is HANG:
            self.server.owner.release.wait()
            self.close_connection = True
            return
        data = answer.body.encode()
        self.send_response(answer.status)
        for k, v in answer.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # http.server would print each request line, path (the secret) included


class LoopbackServer:
    """Use as a context manager; ``url(path)`` is where to send."""

    def __init__(self, script: list[Answer] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[Received] = []
        self.release = threading.Event()
        self._cond = threading.Condition()
        self._server = _Server(self)
        # A short poll interval: shutdown() waits for one poll (0.5 s by default).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name="loopback"
        )

    def url(self, path: str = "/") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def record(self, req: Received) -> Answer:
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
            return self.script.pop(0) if self.script else Answer()

    def wait_requests(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requests) >= count, timeout)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
