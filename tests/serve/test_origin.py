"""The server answers only requests for its own host names, and state changes only from its own
pages (or a reverse proxy's trusted origin): no other site, and no DNS rebinding of one, can drive
it from a user's browser (medseg_r.serve.app._SameOrigin, medseg_r.serve.host_names)."""

import asyncio
import json
import socket

import pytest

pytest.importorskip("starlette", reason="the web app needs: pip install -e '.[serve]'")

from medseg_r.serve import host_names, open_socket  # noqa: E402
from medseg_r.serve.app import LOOPBACK_NAMES, _SameOrigin  # noqa: E402


def _status(middleware, method="POST", host="127.0.0.1:7860", origin=None):
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    middleware.app = app
    headers = ([(b"host", host.encode())] if host is not None else []) + (
        [(b"origin", origin.encode())] if origin else [])
    asyncio.run(middleware({"type": "http", "method": method, "path": "/api/session",
                            "headers": headers}, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, (json.loads(body) if status == 403 else None)


def test_a_loopback_server_answers_its_own_names_only():
    guard = _SameOrigin(None, LOOPBACK_NAMES)
    assert _status(guard)[0] == 200
    assert _status(guard, host="localhost:7860", origin="http://localhost:7860")[0] == 200
    assert _status(guard, host="[::1]:7860", origin="http://[::1]:7860")[0] == 200
    assert _status(guard, host="LOCALHOST")[0] == 200
    assert _status(guard, host=None)[0] == 200  # no Host: not a browser
    status, body = _status(guard, host="evil.example:7860", origin="http://evil.example:7860")
    assert status == 403 and "--allowed-host" in body["error"]  # DNS rebinding
    status, body = _status(guard, origin="http://evil.example")
    assert status == 403 and "another site" in body["error"]
    assert _status(guard, method="GET", origin="http://evil.example")[0] == 200  # reading a page


def test_default_ports_are_filled_in_before_origins_are_compared():
    guard = _SameOrigin(None, LOOPBACK_NAMES)
    assert _status(guard, host="localhost:80", origin="http://localhost")[0] == 200
    assert _status(guard, host="localhost", origin="http://localhost:80")[0] == 200
    assert _status(guard, host="localhost:8080", origin="http://localhost")[0] == 403


def test_a_reverse_proxys_public_name_is_trusted_when_given():
    guard = _SameOrigin(None, LOOPBACK_NAMES | {"seg.example.org"}, trusted_origins=["seg.example.org"])
    # nginx's default: the upstream's Host, the browser's Origin
    assert _status(guard, host="127.0.0.1:7860", origin="https://seg.example.org")[0] == 200
    assert _status(guard, host="seg.example.org", origin="https://seg.example.org")[0] == 200
    assert _status(guard, host="127.0.0.1:7860", origin="https://other.example.org")[0] == 403


def test_a_server_open_to_other_machines_takes_addresses_and_its_own_names_not_any_name():
    sock = open_socket("0.0.0.0", 0)
    try:
        names, ip_hosts = host_names(sock, ["proxy.example"])
    finally:
        sock.close()
    assert ip_hosts and socket.gethostname().lower() in names and "proxy.example" in names
    guard = _SameOrigin(None, names, ip_hosts=ip_hosts)
    assert _status(guard, host="192.168.1.20:7860", origin="http://192.168.1.20:7860")[0] == 200
    assert _status(guard, host=f"{socket.gethostname()}:7860")[0] == 200
    assert _status(guard, host="evil.example:7860", origin="http://evil.example:7860")[0] == 403
    sock = open_socket("127.0.0.1", 0)
    try:
        assert host_names(sock) == (LOOPBACK_NAMES | {"127.0.0.1"}, False)
    finally:
        sock.close()
