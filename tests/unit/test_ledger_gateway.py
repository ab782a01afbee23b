"""Message construction and error mapping of the Gateway client, against the in-process fake.

The fake checks nothing about policies or commits; these tests only pin down
what the client sends and how it reads answers and rich gRPC errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2, transaction_pb2

from synthreg.ledger import (
    ChaincodeError,
    ChaincodeInfo,
    CommitError,
    CommitStatusError,
    EndorseChaincodeError,
    EndorseError,
    ErrorDetail,
    EvaluateChaincodeError,
    EvaluateError,
    Gateway,
    GatewayError,
    LedgerError,
    SubmitError,
    ecdsa_signer,
    is_low_s,
)
from synthreg.ledger.errors import decode_status_details, encode_status, parse_chaincode_error
from synthreg.ledger.proposal import (
    NONCE_SIZE,
    TransactionContext,
    build_proposal,
    compute_tx_id,
    parse_signed_proposal,
    sign_proposal,
)
from synthreg.ledger.signing import digest
from synthreg.ledger.testing import (
    FakeFailure,
    FakeGateway,
    FakeGatewayServicer,
    make_test_identity,
    serve_fake,
)

PREHASHED = ec.ECDSA(Prehashed(hashes.SHA256()))
IDENTITY, KEY = make_test_identity("Registry1MSP", role="generator")
SIGNER = ecdsa_signer(KEY)


def _verify(signature: bytes, message: bytes) -> None:
    assert is_low_s(signature)
    KEY.public_key().verify(signature, digest(message), PREHASHED)


@pytest.fixture
def fake() -> Iterator[FakeGateway]:
    with serve_fake(FakeGatewayServicer()) as running:
        yield running


@pytest.fixture
def gateway(fake: FakeGateway) -> Gateway:
    return Gateway(IDENTITY, SIGNER, fake.channel, default_timeout=5.0)


# --- proposal construction ---------------------------------------------------

def test_tx_id_is_sha256_of_nonce_and_creator() -> None:
    creator = IDENTITY.serialize()
    ctx = TransactionContext.new(creator)
    assert len(ctx.nonce) == NONCE_SIZE
    assert ctx.tx_id == hashlib.sha256(ctx.nonce + creator).hexdigest()
    fixed = bytes(range(24))
    assert compute_tx_id(fixed, b"creator") == hashlib.sha256(fixed + b"creator").hexdigest()
    assert TransactionContext.new(creator).nonce != ctx.nonce
    with pytest.raises(ValueError):
        TransactionContext.new(creator, nonce=b"short")


def test_signed_proposal_round_trip() -> None:
    ctx = TransactionContext.new(IDENTITY.serialize())
    proposal = build_proposal(ctx, "keys", "keyvault", "PutShare", ["r1", b"\x00\xff"], {"share": b"secret"})
    signed = sign_proposal(proposal, SIGNER)
    info = parse_signed_proposal(signed)
    assert (info.tx_id, info.channel_name, info.chaincode_name) == (ctx.tx_id, "keys", "keyvault")
    assert info.header_type == common_pb2.ENDORSER_TRANSACTION
    assert info.fn == "PutShare" and info.args == (b"r1", b"\x00\xff")
    assert info.transient == {"share": b"secret"}
    assert info.msp_id == "Registry1MSP" and info.nonce == ctx.nonce
    assert compute_tx_id(info.nonce, info.creator) == info.tx_id
    _verify(signed.signature, signed.proposal_bytes)
    header = common_pb2.Header.FromString(proposal_pb2.Proposal.FromString(signed.proposal_bytes).header)
    timestamp = common_pb2.ChannelHeader.FromString(header.channel_header).timestamp.ToDatetime(dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - timestamp).total_seconds()) < 60


# --- evaluate ------------------------------------------------------------------

def test_evaluate_sends_signed_proposal_and_target_orgs(fake: FakeGateway, gateway: Gateway) -> None:
    result = gateway.network("gan").contract("ganledger").evaluate(
        "GetRound", "3", transient={"k": b"v"}, endorsing_orgs=["Registry2MSP"]
    )
    assert result == b'{"fn": "GetRound", "args": ["3"]}'
    (request,) = fake.servicer.requests["Evaluate"]
    assert isinstance(request, gateway_pb2.EvaluateRequest)
    info = parse_signed_proposal(request.proposed_transaction)
    assert request.transaction_id == info.tx_id and request.channel_id == "gan"
    assert list(request.target_organizations) == ["Registry2MSP"]
    assert info.transient == {"k": b"v"}
    _verify(request.proposed_transaction.signature, request.proposed_transaction.proposal_bytes)


# --- submit --------------------------------------------------------------------

def test_submit_endorses_signs_submits_and_checks_commit(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.block_number = 12
    contract = gateway.network("keys").contract("keyvault")
    res = contract.submit("PutPrivate", "id1", transient={"value": b"s3cret"}, endorsing_orgs=["Registry1MSP"])
    assert res.block_number == 12 and res.status == transaction_pb2.VALID and res.status_name == "VALID"
    assert res.result == b'{"fn": "PutPrivate", "args": ["id1"]}'

    (endorse,) = fake.servicer.requests["Endorse"]
    assert isinstance(endorse, gateway_pb2.EndorseRequest)
    assert endorse.transaction_id == res.tx_id and endorse.channel_id == "keys"
    assert list(endorse.endorsing_organizations) == ["Registry1MSP"]
    assert parse_signed_proposal(endorse.proposed_transaction).transient == {"value": b"s3cret"}

    (submit,) = fake.servicer.requests["Submit"]
    assert isinstance(submit, gateway_pb2.SubmitRequest)
    assert submit.transaction_id == res.tx_id and submit.channel_id == "keys"
    envelope = submit.prepared_transaction
    _verify(envelope.signature, envelope.payload)
    assert b"s3cret" not in envelope.payload  # the ordered transaction never holds transient data

    (status,) = fake.servicer.requests["CommitStatus"]
    assert isinstance(status, gateway_pb2.SignedCommitStatusRequest)
    _verify(status.signature, status.request)
    parsed = gateway_pb2.CommitStatusRequest.FromString(status.request)
    assert (parsed.transaction_id, parsed.channel_id, parsed.identity) == (res.tx_id, "keys", IDENTITY.serialize())


def test_submit_refuses_prepared_transaction_with_transient_data(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.leak_transient = True
    with pytest.raises(EndorseError, match="transient"):
        gateway.network("keys").contract("keyvault").submit("Put", transient={"value": b"x"})
    assert "Submit" not in fake.servicer.requests


def test_submit_refuses_someone_elses_transaction(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.wrong_tx_id = True
    with pytest.raises(EndorseError, match="expected") as info:
        gateway.network("gan").contract("ganledger").submit("Put")
    assert info.value.tx_id
    assert "Submit" not in fake.servicer.requests


def test_invalid_commit_raises_commit_error(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.commit_code = transaction_pb2.MVCC_READ_CONFLICT
    with pytest.raises(CommitError) as info:
        gateway.network("gan").contract("ganledger").submit("Put")
    err = info.value
    assert err.validation_code == 11 and err.name == "MVCC_READ_CONFLICT"
    assert err.block_number == 7 and err.tx_id in str(err)


# --- rich error mapping ----------------------------------------------------------

DENIED = (
    ErrorDetail("peer0.registry2:7051", "Registry2MSP", "chaincode response 500, access denied: Registry2MSP"),
    ErrorDetail("peer0.registry3:9051", "Registry3MSP", "chaincode response 500, access denied: Registry3MSP"),
)


@pytest.mark.parametrize(
    ("rpc", "error_type"),
    [("Endorse", EndorseError), ("Submit", SubmitError), ("CommitStatus", CommitStatusError)],
)
def test_submit_stage_errors_carry_tx_id_code_and_peer_details(
    fake: FakeGateway, gateway: Gateway, rpc: str, error_type: type[GatewayError]
) -> None:
    fake.servicer.failures[rpc] = FakeFailure(grpc.StatusCode.ABORTED, f"{rpc} went wrong", DENIED)
    with pytest.raises(error_type) as info:
        gateway.network("gan").contract("ganledger").submit("Put", "a")
    err = info.value
    assert isinstance(err, LedgerError)
    assert err.code == grpc.StatusCode.ABORTED and err.message == f"{rpc} went wrong"
    assert err.details == DENIED
    assert err.tx_id == fake.servicer.requests["Endorse"][0].transaction_id  # type: ignore[attr-defined]
    assert "access denied: Registry2MSP" in str(err) and err.tx_id in str(err)
    assert isinstance(err.__cause__, grpc.RpcError)


def test_evaluate_error_shows_chaincode_message(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.failures["Evaluate"] = FakeFailure(
        grpc.StatusCode.UNKNOWN, "evaluate call to endorser returned error", DENIED[:1]
    )
    with pytest.raises(EvaluateError) as info:
        gateway.network("keys").contract("keyvault").evaluate("GetPrivate", "id1")
    assert "access denied: Registry2MSP" in str(info.value)
    assert isinstance(info.value.__cause__, grpc.RpcError)


def test_error_without_rich_details_still_maps(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.failures["Evaluate"] = FakeFailure(grpc.StatusCode.PERMISSION_DENIED, "creator org unknown")
    with pytest.raises(EvaluateError) as info:
        gateway.network("gan").contract("ganledger").evaluate("Get")
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED and info.value.details == ()
    assert "creator org unknown" in str(info.value)


def test_non_success_chaincode_response_is_an_evaluate_error(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.evaluate_status, fake.servicer.evaluate_message = 500, "access denied: wrong org"
    with pytest.raises(EvaluateError, match="500: access denied: wrong org") as info:
        gateway.network("gan").contract("ganledger").evaluate("Get")
    assert info.value.tx_id


# --- chaincode verdicts: parsed once, by the client --------------------------

# What Fabric's Gateway really sends (status message, then one ErrorDetail per peer).
_ACCESS_MSG = 'chaincode response 500, ACCESS_DENIED: caller Registry1MSP role "auditor" not allowed (allowed: admin)'


@pytest.mark.parametrize(
    ("message", "details", "expected"),
    [
        (f"evaluate call to endorser returned error: {_ACCESS_MSG}",
         (ErrorDetail("127.0.0.1:8111", "Registry1MSP", _ACCESS_MSG),),
         ChaincodeInfo("ACCESS_DENIED",
                       'ACCESS_DENIED: caller Registry1MSP role "auditor" not allowed (allowed: admin)')),
        ("failed to endorse transaction, see attached details for more info",
         (ErrorDetail("127.0.0.1:8111", "Registry1MSP", "chaincode response 500, ALREADY_EXISTS: key ceremony abc"),
          ErrorDetail("127.0.0.1:8211", "Registry2MSP", "chaincode response 500, ALREADY_EXISTS: key ceremony abc")),
         ChaincodeInfo("ALREADY_EXISTS", "ALREADY_EXISTS: key ceremony abc")),
        ("failed to endorse transaction, see attached details for more info",
         (ErrorDetail("127.0.0.1:8211", "Registry2MSP", "failed to execute transaction: timeout expired"),
          ErrorDetail("127.0.0.1:8111", "Registry1MSP",
                      "chaincode response 500, PRECONDITION_FAILED: run r1 round 3 is frozen")),
         ChaincodeInfo("PRECONDITION_FAILED", "PRECONDITION_FAILED: run r1 round 3 is frozen")),
        ("Deadline Exceeded", (), None),
        ("failed to endorse transaction, see attached details for more info",
         (ErrorDetail("127.0.0.1:8111", "Registry1MSP", "access denied: creator org unknown"),), None),
    ],
)
def test_chaincode_verdict_is_parsed_from_message_then_peer_details(
    message: str, details: tuple[ErrorDetail, ...], expected: ChaincodeInfo | None
) -> None:
    assert parse_chaincode_error(message, details) == expected


def test_evaluate_chaincode_error_is_an_evaluate_error_with_the_parsed_code(
    fake: FakeGateway, gateway: Gateway
) -> None:
    detail = ErrorDetail("127.0.0.1:8211", "Registry2MSP",
                         'chaincode response 500, INVALID_ARGUMENT: argument "org": "X" is not a consortium MSP ID')
    fake.servicer.failures["Evaluate"] = FakeFailure(grpc.StatusCode.UNKNOWN, "evaluate call returned error", (detail,))
    with pytest.raises(ChaincodeError) as info:
        gateway.network("keys").contract("keyvault").evaluate("GetShareHash", "X")
    err = info.value
    assert isinstance(err, EvaluateChaincodeError) and isinstance(err, EvaluateError)
    assert err.chaincode == ChaincodeInfo(
        "INVALID_ARGUMENT", 'INVALID_ARGUMENT: argument "org": "X" is not a consortium MSP ID')
    assert err.code == grpc.StatusCode.UNKNOWN and err.details == (detail,) and err.tx_id
    assert str(err).startswith(f"evaluate failed (tx {err.tx_id}): UNKNOWN: ")
    assert isinstance(err.__cause__, grpc.RpcError)


def test_endorse_chaincode_error_is_an_endorse_error_with_the_parsed_code(
    fake: FakeGateway, gateway: Gateway
) -> None:
    detail = ErrorDetail("127.0.0.1:8111", "Registry1MSP",
                         "chaincode response 500, PRECONDITION_FAILED: step r1/0/1 of Registry1MSP: generator first")
    fake.servicer.failures["Endorse"] = FakeFailure(
        grpc.StatusCode.ABORTED, "failed to endorse transaction, see attached details for more info", (detail,))
    with pytest.raises(EndorseError) as info:
        gateway.network("gan").contract("ganledger").submit("RecordDiscriminatorStep", "r1", "{}")
    err = info.value
    assert isinstance(err, EndorseChaincodeError) and isinstance(err, ChaincodeError)
    assert err.chaincode.code == "PRECONDITION_FAILED"
    assert err.chaincode.detail == "PRECONDITION_FAILED: step r1/0/1 of Registry1MSP: generator first"
    assert err.code == grpc.StatusCode.ABORTED and err.stage == "endorse"


def test_failures_without_a_chaincode_code_stay_plain_stage_errors(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.failures["Submit"] = FakeFailure(
        grpc.StatusCode.ABORTED, "PRECONDITION_FAILED: text in an orderer message is no chaincode verdict")
    with pytest.raises(SubmitError) as info:
        gateway.network("gan").contract("ganledger").submit("Put", "a")
    assert not isinstance(info.value, ChaincodeError)
    fake.servicer.failures["Evaluate"] = FakeFailure(grpc.StatusCode.UNAVAILABLE, "connection refused")
    with pytest.raises(EvaluateError) as ev:
        gateway.network("gan").contract("ganledger").evaluate("Get")
    assert not isinstance(ev.value, ChaincodeError)


def test_non_success_response_with_a_code_is_a_chaincode_error(fake: FakeGateway, gateway: Gateway) -> None:
    fake.servicer.evaluate_status, fake.servicer.evaluate_message = 500, "NOT_FOUND: no record run/x"
    with pytest.raises(EvaluateChaincodeError) as info:
        gateway.network("gan").contract("ganledger").evaluate("GetRecord", "run/x")
    assert info.value.chaincode == ChaincodeInfo("NOT_FOUND", "NOT_FOUND: no record run/x") and info.value.tx_id


def test_unreachable_peer_is_a_typed_error() -> None:
    channel = grpc.insecure_channel("127.0.0.1:1")  # nothing listens on port 1
    gw = Gateway(IDENTITY, SIGNER, channel, default_timeout=2.0)
    with pytest.raises(EvaluateError) as info:
        gw.network("gan").contract("ganledger").evaluate("Get")
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    channel.close()


def test_status_details_codec_ignores_foreign_and_garbage() -> None:
    raw = encode_status(grpc.StatusCode.ABORTED, "m", DENIED)
    assert decode_status_details(raw) == DENIED
    assert decode_status_details(b"\xff\xff\xff") == ()


# --- TLS connection helper ---------------------------------------------------------

def _tls_material(host: str) -> tuple[bytes, bytes, bytes]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlsca.test")])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, leaf.public_bytes(pem), ca.public_bytes(pem)


def test_connect_speaks_tls_with_server_name_override() -> None:
    host = "peer0.registry1.example.com"
    with serve_fake(FakeGatewayServicer(), tls=_tls_material(host), server_name=host) as running:
        gw = Gateway(IDENTITY, SIGNER, running.channel, default_timeout=5.0)
        assert gw.network("gan").contract("ganledger").evaluate("Ping") == b'{"fn": "Ping", "args": []}'


def test_connect_requires_cert_and_key_together() -> None:
    from synthreg.ledger import connect

    with pytest.raises(ValueError):
        connect("127.0.0.1:7051", b"", client_cert=b"x")


class _Answers:
    """A contract whose evaluate raises or returns what it is given (for evaluate_or_none)."""

    def __init__(self, answer: bytes | Exception) -> None:
        self.answer = answer

    def evaluate(self, fn: str, *args: str) -> bytes:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_evaluate_or_none_is_none_only_when_the_chaincode_says_not_found() -> None:
    """The one helper behind `run status`, the auditor and the apps: a peer that cannot be
    reached, or a refusal, must not read as "nothing recorded" (`run status` used to show
    an unreachable peer's answers as empty progress)."""
    from synthreg.ledger import evaluate_or_none
    from synthreg.ledger.errors import EvaluateChaincodeError

    def chaincode(code: str) -> EvaluateChaincodeError:
        return EvaluateChaincodeError(f"{code}: x", ChaincodeInfo(code, f"{code}: x"))

    assert evaluate_or_none(_Answers(b'{"round": 3}'), "GetStepHead", "r", "m") == {"round": 3}  # type: ignore[arg-type]
    assert evaluate_or_none(_Answers(chaincode("NOT_FOUND")), "GetStepHead", "r", "m") is None  # type: ignore[arg-type]
    with pytest.raises(EvaluateChaincodeError, match="ACCESS_DENIED"):
        evaluate_or_none(_Answers(chaincode("ACCESS_DENIED")), "GetStepHead", "r", "m")  # type: ignore[arg-type]
    unreachable = EvaluateError("failed to connect: NOT_FOUND in the text is not a verdict",
                                code=grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(EvaluateError, match="failed to connect"):
        evaluate_or_none(_Answers(unreachable), "GetStepHead", "r", "m")  # type: ignore[arg-type]
