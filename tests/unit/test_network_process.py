"""Readiness gating of node processes (no Fabric needed).

A Fabric peer answers ``/healthz`` on its operations port before its gRPC
listener is up; readiness must wait for both.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from synthreg.network import process


@pytest.fixture
def healthz_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_alone_is_enough_without_a_tcp_check(healthz_url: str) -> None:
    assert process.is_healthy(process.Health(url=healthz_url))


def test_healthz_up_but_main_port_closed_is_not_ready(healthz_url: str) -> None:
    port = _closed_port()
    assert not process.is_healthy(process.Health(url=healthz_url, tcp=("127.0.0.1", port)))


def test_healthz_and_listening_port_is_ready(healthz_url: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert process.is_healthy(process.Health(url=healthz_url, tcp=("127.0.0.1", port)))


def test_port_in_use_is_refused_with_a_clear_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(process.PortInUseError, match=f"127.0.0.1:{port} is already in use"):
            process._check_free("peer-test", (port,))


def test_bound_listener_that_does_not_serve_tls_is_not_ready(healthz_url: str) -> None:
    # the kernel accepts on a bound, listening socket before the server runs;
    # with tcp_tls the check waits for a real handshake
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        health = process.Health(url=healthz_url, tcp=("127.0.0.1", port), tcp_tls=True)
        assert not process.is_healthy(health, timeout=0.3)


def test_a_network_home_keeps_the_shape_it_was_created_with(tmp_path) -> None:
    from synthreg.network.launcher import Launcher, NetworkError
    from synthreg.network.topology import NetworkConfig

    def launcher(**kw: object) -> Launcher:
        cfg = NetworkConfig(home=tmp_path / "net", fabric_bin=tmp_path / "bin", repo_root=tmp_path, **kw)
        cfg.home.mkdir(parents=True, exist_ok=True)
        return Launcher(cfg, log=lambda m: None)

    launcher(base_port=7000).check_topology()
    launcher(base_port=7000).check_topology()  # same shape: resumable
    with pytest.raises(NetworkError, match=r"base_port 7000 \(asked 8000\).*down --wipe"):
        launcher(base_port=8000).check_topology()
    with pytest.raises(NetworkError, match=r"n_orgs 3 \(asked 2\)"):
        launcher(n_orgs=2).check_topology()
