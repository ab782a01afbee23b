"""Opening a TLS gRPC channel to a peer's Gateway service.

A plain helper for the process edge: apps, CLIs and test fixtures call
:func:`connect` with paths/bytes from their own configuration and inject the
resulting :class:`grpc.Channel` into :class:`~synthreg.ledger.gateway.Gateway`.
There is no plaintext option: every Fabric endpoint in synthreg uses TLS.
The caller owns the channel and closes it.
"""

from __future__ import annotations

import grpc

from synthreg.ledger.errors import ConnectError

MAX_MESSAGE_BYTES = 100 * 1024 * 1024
"""gRPC message limit both ways, as Fabric's peers use (gRPC's client default is 4 MiB
to receive, which an endorsed transaction carrying a CKKS ciphertext exceeds)."""


def connect(
    endpoint: str,
    tls_root_cert: bytes,
    server_name: str | None = None,
    client_cert: bytes | None = None,
    client_key: bytes | None = None,
) -> grpc.Channel:
    """A TLS channel to ``endpoint`` (``host:port``) trusting ``tls_root_cert`` (PEM).

    ``server_name`` overrides the name checked against the server certificate
    (e.g. ``peer0.registry1.example.com`` when dialling ``127.0.0.1``).
    ``client_cert``/``client_key`` (PEM) enable mutual TLS and must be given
    together (``ValueError`` otherwise). The channel connects lazily; use
    :func:`wait_ready` to fail fast on an unreachable peer.
    """
    if (client_cert is None) != (client_key is None):
        raise ValueError("client_cert and client_key must be given together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls_root_cert,
        private_key=client_key,
        certificate_chain=client_cert,
    )
    options: list[tuple[str, str | int]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(endpoint, credentials, options=options)


def wait_ready(channel: grpc.Channel, timeout: float) -> None:
    """Block until ``channel`` is connected; :class:`ConnectError` after ``timeout`` seconds.

    A TLS handshake failure (wrong root cert or server name) also ends here as
    a timeout, since gRPC keeps retrying; the peer's log names the cause.
    """
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError as exc:
        raise ConnectError(f"gRPC channel not ready after {timeout:.1f}s") from exc
