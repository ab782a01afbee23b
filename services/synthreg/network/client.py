"""Open a Gateway for an org's app identity from a network profile.

The one place that turns a :class:`~synthreg.network.profile.Profile` into an
injected identity, signer and TLS channel for :class:`synthreg.ledger.Gateway`;
used by the CLI, the apps, the integration tests and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from synthreg.ledger import Gateway, Signer, connect, load_msp_identity, wait_ready
from synthreg.network.profile import Profile


@contextmanager
def open_gateway(
    profile: Profile,
    msp_id: str,
    role: str,
    *,
    wrap_signer: Callable[[Signer], Signer] | None = None,
    timeout: float = 30.0,
) -> Iterator[Gateway]:
    """A Gateway on ``msp_id``'s own peer, signing as its ``role`` app identity.

    ``wrap_signer`` lets tests alter signatures (e.g. make them high-S). The
    gRPC channel is closed on exit.
    """
    org = profile.org(msp_id)
    identity, signer = load_msp_identity(msp_id, org.user_msp(role))
    channel = connect(org.peer_endpoint, org.tls_ca_cert.read_bytes(), server_name=None)
    try:
        wait_ready(channel, timeout=10.0)
        yield Gateway(identity, wrap_signer(signer) if wrap_signer else signer, channel,
                      default_timeout=timeout)
    finally:
        channel.close()
