"""A fault-injecting HTTP proxy in front of moto: S3 under load, as the lake's writes meet it.

Every request is forwarded to moto, except writes (a PUT: PutObject, and UploadPart of a
multipart upload), which may be answered `503 SlowDown` or have their connection reset, at a
rate; a write whose path holds one of `refused` is always answered 503.
"""

import http.client
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>proxy</RequestId></Error>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


class S3FaultProxy:
    """`S3FaultProxy(moto_endpoint, rate=0.2)`: a proxy on 127.0.0.1 (`url`), started by `start`;
    `faults` counts what it did: forwarded, slow_down, reset."""

    def __init__(
        self, upstream: str, rate: float = 0.0, refused: Iterable[str] = (), seed: int = 0
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.rate, self.refused = rate, tuple(refused)
        self.faults: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "S3FaultProxy":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fault_for(self, method: str, path: str) -> str | None:
        """What to do to this request instead of forwarding it: slow_down, reset or None."""
        if method != "PUT":
            return None
        if any(text in path for text in self.refused):
            return "slow_down"
        with self._lock:
            draw = self._random.random()
        if draw < self.rate * 2 / 3:
            return "slow_down"
        if draw < self.rate:
            return "reset"
        return None


def _handler(proxy: S3FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            body = self._body()
            fault = proxy.fault_for(self.command, self.path)
            with proxy._lock:
                proxy.faults[fault or "forwarded"] += 1
            if fault == "reset":
                # A connection cut with an RST, as a load balancer under load does.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return
            if fault == "slow_down":
                self._answer(503, "Slow Down", [("Content-Type", "application/xml")], SLOW_DOWN)
                return
            upstream = http.client.HTTPConnection(
                proxy.upstream.hostname, proxy.upstream.port, timeout=60
            )
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
                self._answer(response.status, response.reason, kept, data)
            finally:
                upstream.close()

        def _answer(
            self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes
        ) -> None:
            self.send_response(status, reason)
            for name, value in headers:
                self.send_header(name, value)
            if not any(name.lower() == "content-length" for name, _ in headers):
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    return Handler
