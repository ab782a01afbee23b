"""Entry point of the ledger client: a signing identity bound to one peer's Gateway.

Built once per process at its edge (app ``main``, CLI command, test fixture)::

    identity, signer = load_msp_identity("Registry1MSP", msp_dir)
    channel = connect("127.0.0.1:7051", tls_ca_pem, "peer0.registry1.example.com")
    gateway = Gateway(identity, signer, channel)
    contract = gateway.network("gan").contract("ganledger")

The caller owns the gRPC channel (and closes it); :class:`Gateway` only wraps
it in a stub. Everything it needs is injected, so tests can pass an in-process
channel (see :mod:`synthreg.ledger.testing`) and a deliberately bad signer.
Thread-safe: contracts may be used from several threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from fabric_protos.gateway import gateway_pb2_grpc

from synthreg.ledger.contract import Contract
from synthreg.ledger.events import ChaincodeEventStream, signed_events_request
from synthreg.ledger.identity import Identity
from synthreg.ledger.signing import Signer

DEFAULT_TIMEOUT = 30.0


@dataclass
class Gateway:
    """Identity + signer + gRPC channel to a peer running the Fabric Gateway service.

    ``default_timeout`` (seconds) bounds each unary RPC (Evaluate, Endorse,
    Submit, CommitStatus); an expired deadline surfaces as the stage's error
    with code ``DEADLINE_EXCEEDED``.
    """

    identity: Identity
    signer: Signer
    channel: grpc.Channel
    default_timeout: float = DEFAULT_TIMEOUT
    stub: gateway_pb2_grpc.GatewayStub = field(init=False, repr=False)
    creator: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stub = gateway_pb2_grpc.GatewayStub(self.channel)
        self.creator = self.identity.serialize()

    def network(self, channel_name: str) -> Network:
        """The Fabric channel ``channel_name`` (no RPC happens here)."""
        return Network(self, channel_name)


@dataclass(frozen=True)
class Network:
    """One Fabric channel seen through a :class:`Gateway`."""

    gateway: Gateway
    name: str

    def contract(self, chaincode_name: str) -> Contract:
        return Contract(self, chaincode_name)

    def chaincode_events(
        self,
        chaincode: str,
        start_block: int | None = None,
        after_tx_id: str | None = None,
        timeout: float | None = None,
    ) -> ChaincodeEventStream:
        """Stream events of ``chaincode`` on this channel.

        Without ``start_block`` the stream begins at the next block committed;
        with it, at that block (replaying history). ``after_tx_id`` skips events
        up to and including that transaction (resume from a
        :class:`~synthreg.ledger.events.Checkpoint`). ``timeout`` bounds the
        whole stream (``None``: until closed). Opening is lazy; errors surface as
        :class:`~synthreg.ledger.errors.ChaincodeEventsError` while iterating.
        """
        gw = self.gateway
        request = signed_events_request(
            self.name, chaincode, gw.creator, gw.signer, start_block, after_tx_id
        )
        return ChaincodeEventStream(gw.stub, request, start_block, after_tx_id, timeout)
