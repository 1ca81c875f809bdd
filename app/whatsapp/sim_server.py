"""A small threaded HTTP/1.1 WSGI server with keep-alive, for running the simulator.

Why not a general server: per request, werkzeug's dev server and gunicorn's gthread worker spend about 0.5 ms of
CPU here, cheroot and waitress about 0.3 ms, this one under 0.2 ms, of which the simulator itself needs 0.04 ms.
On a 2-core machine where the benchmark client shares the CPU, that difference decides whether thousands of
sends per second are possible. It serves one trusted app on a local port: request bodies come with a Content-Length
or chunked (as Graph accepts both), there is no TLS, and each connection gets one thread.
"""

from __future__ import annotations

import io
import socket
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

MAX_LINE = 65536
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
MAX_UPLOAD_BODY = 101 * 1024 * 1024  # POST …/media: Meta takes documents up to 100 MB, plus the multipart framing
IDLE_TIMEOUT_S = 120.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _BadRequest(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: WSGIApp):
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(socketserver.StreamRequestHandler):
    rbufsize = MAX_LINE
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection.settimeout(IDLE_TIMEOUT_S)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass  # the peer is already gone

    def handle(self) -> None:
        try:
            while self._handle_one():
                pass
        except (OSError, ValueError):
            return  # idle timeout, reset, or a socket closed by shutdown

    def _handle_one(self) -> bool:
        """Serve one request; False when the connection should close."""
        line = self.rfile.readline(MAX_LINE + 1)
        if not line.strip():
            return bool(line) and line in (b"\r\n", b"\n")  # tolerate a stray blank line between requests
        try:
            environ, keep_alive = self._environ(line)
        except _BadRequest as exc:
            self._write(exc.status, [("Content-Type", "text/plain")], str(exc).encode(), keep_alive=False)
            return False
        status, headers, body = self._call_app(environ)
        if environ["REQUEST_METHOD"] == "HEAD":
            body = b""
        self._write(status, headers, body, keep_alive)
        return keep_alive

    def _environ(self, line: bytes) -> tuple[dict[str, Any], bool]:
        if len(line) > MAX_LINE:
            raise _BadRequest("414 URI Too Long", "Request line too long.")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _BadRequest("400 Bad Request", "Malformed request line.")
        method, target, version = parts
        path, _, query = target.partition("?")
        environ = self._base_environ(method, unquote_to_bytes(path).decode("latin-1"), query, version)
        self._read_headers(environ)
        body = self._read_body(environ)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        connection = environ.get("HTTP_CONNECTION", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        return environ, keep_alive

    def _base_environ(self, method: str, path: str, query: str, version: str) -> dict[str, Any]:
        host, port = self.server.server_address[:2]
        return {"REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
                "SERVER_NAME": str(host), "SERVER_PORT": str(port), "SERVER_PROTOCOL": version,
                "REMOTE_ADDR": str(self.client_address[0]), "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
                "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
                "wsgi.run_once": False, "wsgi.input_terminated": True}

    def _read_headers(self, environ: dict[str, Any]) -> None:
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                return
            name, separator, value = line.decode("latin-1").partition(":")
            if not separator or len(line) > MAX_LINE:
                raise _BadRequest("400 Bad Request", "Malformed header line.")
            key = name.strip().upper().replace("-", "_")
            key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
            value = value.strip()
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        raise _BadRequest("431 Request Header Fields Too Large", "Too many header lines.")

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise _BadRequest("400 Bad Request", "Content-Length is not a number.") from None
        upload = environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].rstrip("/").endswith("/media")
        if length < 0 or length > (MAX_UPLOAD_BODY if upload else MAX_BODY):
            raise _BadRequest("413 Content Too Large", "Request body too large.")
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return self._read_chunked()
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise OSError("client closed the connection mid-body")
        return body

    def _read_chunked(self) -> bytes:
        """A chunked body: hex sizes, each chunk followed by CRLF, a zero size, then optional trailers."""
        body = bytearray()
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest("400 Bad Request", "Malformed chunk size.") from None
            if size < 0 or len(body) + size > MAX_BODY:
                raise _BadRequest("413 Content Too Large", "Request body too large.")
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise OSError("client closed the connection mid-body")
            body += chunk
            self.rfile.readline(MAX_LINE + 1)  # the CRLF closing the chunk
        while self.rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
            pass  # trailers: nothing here needs them
        return bytes(body)

    def _call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        response: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            response["status"], response["headers"] = status, headers
            return lambda data: None

        try:
            result = self.server.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:  # one failing request must answer 500, not kill the connection thread silently
            traceback.print_exc(file=sys.stderr)
            return "500 Internal Server Error", [("Content-Type", "application/json")], b'{"error":"internal"}'
        return response["status"], response["headers"], body

    def _write(self, status: str, headers: list[tuple[str, str]], body: bytes, keep_alive: bool) -> None:
        lines = [f"HTTP/1.1 {status}"]
        lines.extend(f"{name}: {value}" for name, value in headers if name.lower() not in ("content-length",
                                                                                          "connection"))
        lines.append(f"Content-Length: {len(body)}")
        if not keep_alive:
            lines.append("Connection: close")
        self.connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


class SimulatorServer:
    """Serves a WSGI app; call `start()` for a background thread or `serve_forever()` to block."""

    def __init__(self, app: WSGIApp, host: str = "127.0.0.1", port: int = 5055):
        self._server = _Server((host, port), app)
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def serve_forever(self) -> None:
        self._serving = True
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(target=self.serve_forever, name="simulator-server", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop accepting, close idle keep-alive connections, and release the port."""
        if self._serving:  # socketserver's shutdown() waits forever for a loop that never ran
            self._server.shutdown()
        with self._server.connections_lock:
            connections = list(self._server.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
