"""In-process fake of the Fabric Gateway service, for fast unit tests only.

Used by ``tests/unit/test_ledger_*.py`` to check how the client *builds and
parses* messages: it records every request, answers with scripted responses
and can fail with a rich gRPC status (per-peer ``gateway.ErrorDetail``) exactly
as the real Gateway encodes it. It verifies no signatures, runs no chaincode,
enforces no policy and orders nothing — never use it as evidence for
endorsement, privacy or commit behaviour; that is what the integration tests
against the real network are for.

The server listens on 127.0.0.1 with an ephemeral port (plaintext, or TLS if
server credentials are passed) and lives inside a ``with serve_fake(...)``
block.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import (
    chaincode_event_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)

from synthreg.ledger.connection import connect
from synthreg.ledger.errors import STATUS_DETAILS_KEY, ErrorDetail, encode_status
from synthreg.ledger.events import ChaincodeEvent
from synthreg.ledger.identity import ATTRIBUTE_OID, ROLE_ATTRIBUTE, Identity
from synthreg.ledger.proposal import ProposalInfo, parse_signed_proposal
from synthreg.ledger.signing import digest


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, bytes], ...]):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


@dataclass(frozen=True)
class FakeFailure:
    """A scripted rich-status failure for one RPC."""

    code: grpc.StatusCode
    message: str
    details: tuple[ErrorDetail, ...] = ()

    def abort(self, context: grpc.ServicerContext) -> None:
        trailer = ((STATUS_DETAILS_KEY, encode_status(self.code, self.message, self.details)),)
        context.abort_with_status(_Status(self.code, self.message, trailer))


def _default_result(info: ProposalInfo) -> bytes:
    return json.dumps({"fn": info.fn, "args": [a.decode() for a in info.args]}).encode()


@dataclass
class FakeGatewayServicer(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]  # generated, untyped base
    """Scriptable Gateway: records requests, returns canned answers.

    ``result`` computes the chaincode "return value" from the decoded proposal;
    ``failures`` maps an RPC name (``"Evaluate"``, ``"Endorse"``, ``"Submit"``,
    ``"CommitStatus"``, ``"ChaincodeEvents"``) to a :class:`FakeFailure`;
    ``evaluate_status``/``evaluate_message`` shape the Evaluate response;
    ``commit_code``/``block_number`` answer CommitStatus; ``leak_transient``
    and ``wrong_tx_id`` make Endorse return a corrupt prepared transaction.
    ``event_blocks`` is the chaincode-event history ``[(block, [events])]``;
    with ``apply_after_tx_id=False`` the fake ignores ``after_transaction_id``
    (returns whole blocks) so the client's own filtering can be tested;
    ``hold_open`` keeps the stream open after the history, like a real peer
    waiting for new blocks, until the client cancels.
    """

    result: Callable[[ProposalInfo], bytes] = _default_result
    failures: dict[str, FakeFailure] = field(default_factory=dict)
    commit_code: int = transaction_pb2.VALID
    block_number: int = 7
    leak_transient: bool = False
    wrong_tx_id: bool = False
    event_blocks: list[tuple[int, list[ChaincodeEvent]]] = field(default_factory=list)
    apply_after_tx_id: bool = True
    hold_open: bool = False
    evaluate_status: int = 200
    evaluate_message: str = ""
    requests: dict[str, list[object]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _record(self, name: str, request: object, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.requests.setdefault(name, []).append(request)
        failure = self.failures.get(name)
        if failure is not None:
            failure.abort(context)

    def Evaluate(
        self, request: gateway_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.EvaluateResponse:
        self._record("Evaluate", request, context)
        info = parse_signed_proposal(request.proposed_transaction)
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(
                status=self.evaluate_status, message=self.evaluate_message, payload=self.result(info)
            )
        )

    def Endorse(
        self, request: gateway_pb2.EndorseRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.EndorseResponse:
        self._record("Endorse", request, context)
        return gateway_pb2.EndorseResponse(prepared_transaction=self._prepare(request.proposed_transaction))

    def _prepare(self, signed: proposal_pb2.SignedProposal) -> common_pb2.Envelope:
        """Assemble a transaction the way an endorsing peer does (transient map removed)."""
        info = parse_signed_proposal(signed)
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        if self.wrong_tx_id:
            channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
            channel_header.tx_id = "0" * 64
            header.channel_header = channel_header.SerializeToString()
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        if not self.leak_transient:
            payload.ClearField("TransientMap")
        action = proposal_pb2.ChaincodeAction(
            response=proposal_response_pb2.Response(status=200, payload=self.result(info))
        )
        response_payload = proposal_response_pb2.ProposalResponsePayload(
            proposal_hash=digest(signed.proposal_bytes), extension=action.SerializeToString()
        )
        action_payload = transaction_pb2.ChaincodeActionPayload(
            chaincode_proposal_payload=payload.SerializeToString(),
            action=transaction_pb2.ChaincodeEndorsedAction(
                proposal_response_payload=response_payload.SerializeToString()
            ),
        )
        tx = transaction_pb2.Transaction(
            actions=[transaction_pb2.TransactionAction(
                header=header.signature_header, payload=action_payload.SerializeToString()
            )]
        )
        return common_pb2.Envelope(
            payload=common_pb2.Payload(header=header, data=tx.SerializeToString()).SerializeToString()
        )

    def Submit(self, request: gateway_pb2.SubmitRequest, context: grpc.ServicerContext) -> gateway_pb2.SubmitResponse:
        self._record("Submit", request, context)
        return gateway_pb2.SubmitResponse()

    def CommitStatus(
        self, request: gateway_pb2.SignedCommitStatusRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.CommitStatusResponse:
        self._record("CommitStatus", request, context)
        return gateway_pb2.CommitStatusResponse(result=self.commit_code, block_number=self.block_number)

    def ChaincodeEvents(
        self, request: gateway_pb2.SignedChaincodeEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[gateway_pb2.ChaincodeEventsResponse]:
        self._record("ChaincodeEvents", request, context)
        req = gateway_pb2.ChaincodeEventsRequest.FromString(request.request)
        start = req.start_position.specified.number if req.start_position.HasField("specified") else 0
        after = req.after_transaction_id if self.apply_after_tx_id else ""
        if after:
            holding = [b for b, evs in self.event_blocks if any(e.tx_id == after for e in evs)]
            start = holding[0] if holding else start
        passed = not after
        for block, events in self.event_blocks:
            if block < start:
                continue
            out = []
            for e in events:
                if not passed:
                    passed = e.tx_id == after
                    continue
                if e.chaincode_name == req.chaincode_id:
                    out.append(chaincode_event_pb2.ChaincodeEvent(
                        chaincode_id=e.chaincode_name, tx_id=e.tx_id,
                        event_name=e.event_name, payload=e.payload,
                    ))
            if out:
                yield gateway_pb2.ChaincodeEventsResponse(events=out, block_number=block)
        if self.hold_open:
            cancelled = threading.Event()
            context.add_callback(cancelled.set)
            cancelled.wait(timeout=30.0)


@dataclass
class FakeGateway:
    """A running fake: its servicer (for scripting/inspection), port and a client channel."""

    servicer: FakeGatewayServicer
    port: int
    channel: grpc.Channel


@contextmanager
def serve_fake(
    servicer: FakeGatewayServicer,
    tls: tuple[bytes, bytes, bytes] | None = None,
    server_name: str | None = None,
) -> Iterator[FakeGateway]:
    """Run ``servicer`` on 127.0.0.1:<ephemeral port> and yield it with a client channel.

    Plaintext by default. With ``tls=(server_key_pem, server_cert_pem,
    root_cert_pem)`` the port speaks TLS and the client channel is made by
    :func:`synthreg.ledger.connection.connect` (``server_name`` overrides the
    checked host name), which lets tests exercise the real TLS helper.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    gateway_pb2_grpc.add_GatewayServicer_to_server(servicer, server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        credentials = grpc.ssl_server_credentials([(tls[0], tls[1])])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    endpoint = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(endpoint) if tls is None else connect(endpoint, tls[2], server_name)
    try:
        yield FakeGateway(servicer=servicer, port=port, channel=channel)
    finally:
        channel.close()
        server.stop(grace=None)


def make_test_identity(
    msp_id: str = "Registry1MSP",
    role: str | None = "generator",
    curve: ec.EllipticCurve | None = None,
) -> tuple[Identity, ec.EllipticCurvePrivateKey]:
    """A throwaway self-signed identity (with a ``synthreg.role`` attribute) and its key."""
    key = ec.generate_private_key(curve or ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, msp_id),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{role or 'user'}@test"),
    ])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if role is not None:
        attrs = json.dumps({"attrs": {ROLE_ATTRIBUTE: role}}).encode()
        builder = builder.add_extension(x509.UnrecognizedExtension(ATTRIBUTE_OID, attrs), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return Identity(msp_id, cert.public_bytes(serialization.Encoding.PEM)), key
