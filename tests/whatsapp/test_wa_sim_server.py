import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app.whatsapp.sim_server import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]


def echo_app(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    body = environ["wsgi.input"].read()
    reply = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}?{environ['QUERY_STRING']} {len(body)}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Peer", environ["REMOTE_ADDR"])])
    return [reply]


@pytest.fixture
def sim_echo_server():
    server = SimulatorServer(echo_app, "127.0.0.1", 0).start()
    yield server
    server.shutdown()


def raw_exchange(server, payload):
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_keep_alive_serves_many_requests_on_one_connection(sim_echo_server):
    connection = http.client.HTTPConnection("127.0.0.1", sim_echo_server.port, timeout=2)
    for i in range(3):
        connection.request("POST", f"/a%20b?i={i}", body=b"x" * i)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, f"POST /a b?i={i} {i}".encode())
        assert response.getheader("Connection") is None
    first_socket = connection.sock
    connection.request("GET", "/again")
    connection.getresponse().read()
    assert connection.sock is first_socket
    connection.close()


def test_connection_close_and_http_1_0(sim_echo_server):
    reply = raw_exchange(sim_echo_server, b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in reply and reply.endswith(b"GET /x? 0")
    reply = raw_exchange(sim_echo_server, b"GET /y HTTP/1.0\r\n\r\n")
    assert b"Connection: close" in reply


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"NONSENSE\r\n\r\n", b"400"),
    (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", b"400"),
    (b"POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", b"400"),
    (b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
    (b"GET /boom HTTP/1.1\r\nConnection: close\r\n\r\n", b"500"),
])
def test_bad_requests_get_an_error_status(sim_echo_server, request_bytes, status):
    assert raw_exchange(sim_echo_server, request_bytes).split(b" ")[1] == status


def test_chunked_bodies_are_read_whole(sim_echo_server):
    reply = raw_exchange(sim_echo_server, b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                                          b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"POST /c? 12")


def test_expect_continue(sim_echo_server):
    reply = raw_exchange(sim_echo_server, b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
                                          b"Connection: close\r\n\r\nhi")
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") and reply.endswith(b"POST /e? 2")


def test_shutdown_releases_the_port_and_idle_connections():
    server = SimulatorServer(echo_app, "127.0.0.1", 0).start()
    session = requests.Session()
    assert session.get(f"{server.url}/x", timeout=2).ok
    server.shutdown()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{server.url}/x", timeout=2)
    SimulatorServer(echo_app, "127.0.0.1", 0).shutdown()  # never started: must not hang


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_line_serves_with_env_settings_and_stops_cleanly(stop_signal):
    port = free_port()
    env = {**os.environ, "WHATSAPP_ACCESS_TOKEN": "cli-token", "WHATSAPP_PHONE_NUMBER_ID": "777",
           "WHATSAPP_BUSINESS_ACCOUNT_ID": "888", "SIMULATOR_PORT": str(port), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "app.whatsapp.simulator", "--no-webhooks"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on http://127.0.0.1:" in process.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        payload = {"messaging_product": "whatsapp", "to": "919800000001", "type": "text", "text": {"body": "hi"}}
        sent = requests.post(f"{base}/v23.0/777/messages", json=payload, timeout=5,
                             headers={"Authorization": "Bearer cli-token"})
        assert sent.status_code == 200 and sent.json()["messages"][0]["message_status"] == "accepted"
        templates = requests.get(f"{base}/v23.0/888/message_templates", timeout=5,
                                 headers={"Authorization": "Bearer cli-token"})
        assert templates.status_code == 200 and templates.json()["data"]
        assert requests.get(f"{base}/_sim/config", timeout=5).json()["webhooks"]["enabled"] is False
        started = time.monotonic()
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert "stopped" in process.stdout.read()
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
